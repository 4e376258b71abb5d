/* The lanes dashboard: polls GET /ui/snapshot about once a second and draws it.
   The master key lives in this tab's sessionStorage and travels only as a bearer token. */
"use strict";
(() => {
  const KEY = "laneway.dashboard.key";
  const HISTORY = 300;  // seconds of line history kept (and charted) per group
  const EVERY = 1000;
  const $ = (id) => document.getElementById(id);
  const history = new Map();  // group -> Map(priority -> [[t, waiting], ...])
  const charts = new Map();   // group -> {canvas, legend}: kept across redraws
  let paused = false, timer = null, failures = 0, busy = false;
  let started = null;  // time of the first snapshot this page drew

  function el(tag, props, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "class") node.className = v;
      else if (k.startsWith("data-") || k.startsWith("aria-") || k === "role" || k === "title")
        node.setAttribute(k, v);
      else node[k] = v;
    }
    for (const c of children) node.append(c instanceof Node ? c : String(c ?? ""));
    return node;
  }
  const num = (v) => el("td", { class: "num" }, v === null || v === undefined ? "\u2014" : v);
  const secs = (ms) => ms === null || ms === undefined ? "\u2014"
    : ms < 1000 ? Math.round(ms) + " ms" : (ms / 1000).toFixed(1) + " s";
  const used = (u) => u.limit ? `${u.used} / ${u.limit}` : `${u.used}`;
  const money = (v) => "$" + (v >= 100 ? v.toFixed(0) : v >= 1 ? v.toFixed(2) : v.toFixed(4));

  function until(t) {
    if (!t) return "never";
    let s = Math.max(0, t - Date.now() / 1000);
    const parts = [];
    for (const [n, u] of [[86400, "d"], [3600, "h"], [60, "min"]]) {
      if (s >= n) { parts.push(Math.floor(s / n) + " " + u); s %= n; }
    }
    return "in " + (parts.slice(0, 2).join(" ") || Math.ceil(s) + " s");
  }

  function setStatus(text) { $("status").textContent = text; }

  function showLogin(message) {
    $("board").hidden = true;
    $("controls").hidden = true;
    $("login-section").hidden = false;
    $("login-error").textContent = message || "";
    setStatus("Signed out.");
    $("key").focus();
  }

  function schedule(ms) {
    if (timer === null && !paused) timer = setTimeout(poll, ms);
  }

  async function poll() {
    timer = null;
    if (busy) return;  // one request at a time; the one under way schedules the next
    busy = true;
    try { await fetchSnapshot(); } finally { busy = false; }
  }

  async function fetchSnapshot() {
    const key = sessionStorage.getItem(KEY);
    let res;
    try {
      res = await fetch(new URL("ui/snapshot", location.href), {
        headers: key ? { Authorization: "Bearer " + key } : {},
        cache: "no-store", credentials: "omit",
      });
    } catch (e) {
      return trouble("the gateway is unreachable");
    }
    if (res.status === 401 || res.status === 403) {
      sessionStorage.removeItem(KEY);
      let message = "";
      try { message = (await res.json()).error.message; } catch (e) { /* not JSON */ }
      return showLogin(key ? message || "That key was refused." : "");
    }
    if (!res.ok) return trouble(`the snapshot failed (HTTP ${res.status})`);
    const snap = await res.json();
    failures = 0;
    $("login-section").hidden = true;
    $("board").hidden = false;
    $("controls").hidden = false;
    render(snap);
    schedule(EVERY);
  }

  function trouble(what) {
    failures += 1;
    setStatus(`Connection problem: ${what}. Retrying\u2026`);
    schedule(Math.min(5000, EVERY * failures));
  }

  function render(snap) {
    const now = snap.time;
    if (started === null) started = now;
    const f = snap.fleet;
    setStatus(`Live \u00b7 updated ${new Date(now * 1000).toLocaleTimeString()} \u00b7 `
      + `snapshot took ${snap.took_ms} ms`);
    const fleet = $("fleet");
    const item = (label, value, cls) => el("div", {}, el("dt", {}, label),
      el("dd", cls ? { class: cls } : {}, value));
    fleet.replaceChildren(
      item("State backend", f.degraded ? `${f.state} \u26a0 unreachable: per-instance limits`
        : f.state, f.degraded ? "bad" : ""),
      item("Redis round trip", f.redis_rtt_ms === null ? "\u2014 (in process)"
        : f.redis_rtt_ms + " ms"),
      item(`Instances seen (${f.instances_window_s} s)`, String(f.instances.length)),
      item("Instances", f.instances.map((i) => `${i.id} (${i.seen_s_ago} s ago)`).join(", ")),
      item("This instance", f.instance),
    );
    renderGroups(snap.groups, now);
    renderTiers(snap.groups);
    renderDeployments(snap.groups);
    renderTenants(snap.tenants);
  }

  function remember(group, now) {
    let lanes = history.get(group.model_group);
    if (!lanes) history.set(group.model_group, lanes = new Map());
    const current = new Map(group.lanes.map((l) => [l.priority, l.waiting]));
    for (const p of current.keys()) if (!lanes.has(p)) lanes.set(p, []);
    for (const [p, points] of lanes) {
      points.push([now, current.get(p) || 0]);
      while (points.length && now - points[0][0] > HISTORY) points.shift();
      if (!points.some((pt) => pt[1] > 0)) lanes.delete(p);  // quiet for the whole span
    }
    return [...lanes.entries()].sort((a, b) => a[0] - b[0]);
  }

  function chartCell(group, lanes, now) {
    let c = charts.get(group);
    if (!c) {
      c = { canvas: el("canvas", { width: 260, height: 56, role: "img" }),
            legend: el("div", { class: "legend" }) };
      charts.set(group, c);
    }
    const series = lanes.map(([p, points]) => ({ label: "p" + p, points }));
    // The span grows with the history this page has seen, up to HISTORY.
    const span = Math.max(30, Math.min(HISTORY, Math.ceil((now - started) / 30) * 30));
    LaneChart.draw(c.canvas, series, span, now);
    c.legend.replaceChildren(...(series.length ? series.map((s, i) => {
      const st = LaneChart.style(i);
      const mark = el("span", { "aria-hidden": "true" }, st.mark + " ");
      mark.style.color = st.color;  // (the CSSOM, which the page's CSP allows)
      mark.style.display = "inline";
      return el("span", {}, mark, `${s.label}: ${s.points.at(-1)[1]}`);
    }) : [el("span", { class: "muted" }, "no line")]));
    c.canvas.setAttribute("aria-label", series.length ? `Waiting per lane, last ${span} s: `
      + series.map((s) => `${s.label} now ${s.points.at(-1)[1]}, peak `
        + Math.max(...s.points.map((pt) => pt[1]))).join("; ")
      : `No requests waited in the last ${span} s`);
    return el("td", {}, el("div", { class: "chart" }, c.canvas, c.legend));
  }

  function renderGroups(groups, now) {
    const rows = groups.map((g) => {
      const lanes = remember(g, now);
      return el("tr", { "data-group": g.model_group },
        el("th", { scope: "row" }, g.model_group),
        el("td", { class: "num", "data-field": "waiting" }, g.waiting),
        el("td", { "data-field": "lanes" }, g.lanes.length
          ? g.lanes.map((l) => `p${l.priority}: ${l.waiting}`).join(" \u00b7 ") : "\u2014"),
        el("td", { class: "num" }, secs(g.head_wait_ms)),
        num(g.admitted_60s), num(g.in_flight),
        el("td", { class: "num" + (g.rejected_2m ? " warn" : "") }, g.rejected_2m),
        el("td", { class: "num" + (g.timed_out_2m ? " warn" : "") }, g.timed_out_2m),
        chartCell(g.model_group, lanes, now));
    });
    $("groups").tBodies[0].replaceChildren(...rows);
  }

  function renderTiers(groups) {
    const rows = [];
    for (const g of groups) for (const t of g.tiers) {
      rows.push(el("tr", { "data-group": g.model_group, "data-tier": t.tier },
        el("td", {}, g.model_group), el("th", { scope: "row" }, t.tier),
        el("td", { class: "num" }, Math.round(t.share * 100) + " %"),
        el("td", { class: "num", "data-field": "waiting" }, t.waiting),
        el("td", { class: "num", "data-field": "in_flight" }, t.in_flight),
        num(t.admitted_60s), num(t.tokens_60s)));
    }
    $("tiers-section").hidden = rows.length === 0;
    $("tiers").tBodies[0].replaceChildren(...rows);
  }

  const REASONS = { "failures": "repeated failures", "fatal": "an error retrying cannot fix",
                    "retry-after": "the upstream asked to wait (Retry-After)" };

  function state(d) {
    if (d.cooldown) return el("td", { class: "warn", "data-field": "state" },
      `\u2744 Cooling down ${d.cooldown.remaining_s} s \u2014 `
      + (REASONS[d.cooldown.reason] || d.cooldown.reason || "reason unknown"));
    if (d.max_parallel_requests && d.in_flight >= d.max_parallel_requests)
      return el("td", { class: "warn", "data-field": "state" }, "\u25cf Full");
    return el("td", { class: "ok", "data-field": "state" }, "\u2713 Ready");
  }

  function renderDeployments(groups) {
    const rows = [];
    for (const g of groups) for (const d of g.deployments) {
      const max = d.max_parallel_requests;
      rows.push(el("tr", { "data-deployment": d.id, "data-group": g.model_group },
        el("td", {}, g.model_group),
        el("th", { scope: "row", title: d.id }, `${d.model} `,
          el("span", { class: "muted" }, d.id.slice(0, 8))),
        el("td", { "data-field": "in-flight" }, max
          ? el("meter", { min: 0, max, value: d.in_flight, "aria-hidden": "true" }) : "",
          max ? `${d.in_flight} / ${max}` : `${d.in_flight}`),
        el("td", { class: "num" }, used(d.rpm)), el("td", { class: "num" }, used(d.tpm)),
        state(d),
        el("td", { class: "num" + (d.failures_60s ? " warn" : "") }, d.failures_60s),
        el("td", { class: "num" }, secs(d.latency_ewma_ms)),
        el("td", { class: "num" }, d.latency_p50_ms !== null
          ? `\u2248${secs(d.latency_p50_ms)} / \u2248${secs(d.latency_p95_ms)}` : "\u2014"),
        el("td", { class: "num" }, d.error_rate === null ? "\u2014"
          : `${(d.error_rate * 100).toFixed(1)} % of ${d.attempts_2m}`)));
    }
    $("deployments").tBodies[0].replaceChildren(...rows);
  }

  function renderTenants(tenants) {
    const rows = tenants.rows.map((r) => {
      const over = r.max_budget_usd !== null && r.spend_usd >= r.max_budget_usd;
      return el("tr", { "data-tenant": r.id },
        el("td", {}, r.kind), el("th", { scope: "row" }, r.id, r.blocked ? " (blocked)" : ""),
        el("td", {}, r.alias || "\u2014"), el("td", {}, r.team_id || "\u2014"),
        num(r.waiting), num(r.in_progress), num(r.requests_60s),
        el("td", { class: "num", title: r.served_share === null ? "not reported yet" : "" },
          r.served_share === null ? "\u2014" : (r.served_share * 100).toFixed(1) + " %"),
        el("td", { class: "num" + (over ? " bad" : "") }, (over ? "\u26a0 " : "")
          + money(r.spend_usd) + (r.max_budget_usd === null ? " (no budget)"
            : " / " + money(r.max_budget_usd))),
        el("td", {}, r.budget_resets_at ? until(r.budget_resets_at) : "never"));
    });
    if (!rows.length) rows.push(el("tr", {}, el("td", { colSpan: 10, class: "muted" },
      "No virtual keys or teams.")));
    $("tenants").tBodies[0].replaceChildren(...rows);
    const t = tenants.total;
    $("tenants-caption").textContent = "Requests in the last minute, waiting and in progress "
      + "across the fleet; spend in the current budget period."
      + (t.keys > tenants.shown_max || t.teams > tenants.shown_max
        ? ` Showing the first ${tenants.shown_max} of ${t.keys} keys and ${t.teams} teams.` : "");
  }

  $("login").addEventListener("submit", (e) => {
    e.preventDefault();
    const key = $("key").value.trim();
    $("key").value = "";
    if (!key) return;
    sessionStorage.setItem(KEY, key);
    $("login-error").textContent = "";
    setStatus("Connecting\u2026");
    poll();
  });
  $("pause").addEventListener("click", () => {
    paused = !paused;
    $("pause").setAttribute("aria-pressed", String(paused));
    $("pause").textContent = paused ? "Resume" : "Pause";
    if (paused) { clearTimeout(timer); timer = null; setStatus("Paused."); } else poll();
  });
  $("signout").addEventListener("click", () => {
    sessionStorage.removeItem(KEY);
    clearTimeout(timer);
    timer = null;
    showLogin("");
  });
  poll();
})();
