/* A small step chart on a canvas: a few series of (time, value) over a fixed time span.
   laneway's own (no charting library): the dashboard needs one kind of chart, lines of
   integers over the last minutes, and this is smaller than any library that draws it.
   Series differ by dash pattern as well as colour, so they read without colour; the legend
   (text) and the tables carry the numbers for screen readers. */
"use strict";
const LaneChart = (() => {
  // Colour-blind-safe hues (Okabe-Ito) and dash patterns, in lane order.
  const STYLES = [
    { color: "#0072b2", dash: [], mark: "\u2501\u2501" },
    { color: "#d55e00", dash: [6, 3], mark: "\u254d\u254d" },
    { color: "#009e73", dash: [2, 2], mark: "\u2509\u2509" },
    { color: "#cc79a7", dash: [8, 3, 2, 3], mark: "\u2501\u2509" },
    { color: "#e69f00", dash: [1, 4], mark: "\u00b7\u00b7" },
  ];

  function style(i) { return STYLES[i % STYLES.length]; }

  function niceMax(v) {
    if (v <= 4) return 4;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
    return 10 * p;
  }

  /* canvas: the element; series: [{label, points: [[t (s), value], ...]}];
     span: seconds shown, ending at `now` (s). */
  function draw(canvas, series, span, now) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || canvas.width, h = canvas.clientHeight || canvas.height;
    if (canvas.width !== Math.round(w * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const left = 26, top = 4, bottom = h - 12, right = w - 4;
    let max = 0;
    for (const s of series) for (const p of s.points) if (p[1] > max) max = p[1];
    max = niceMax(max);
    const x = (t) => left + (right - left) * (1 - (now - t) / span);
    const y = (v) => bottom - (bottom - top) * (v / max);

    ctx.font = "10px system-ui, sans-serif";
    ctx.fillStyle = "#57606a";
    ctx.strokeStyle = "#d0d7de";
    ctx.lineWidth = 1;
    ctx.setLineDash([]);
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (const v of [0, max / 2, max]) {
      ctx.beginPath();
      ctx.moveTo(left, Math.round(y(v)) + 0.5);
      ctx.lineTo(right, Math.round(y(v)) + 0.5);
      ctx.stroke();
      ctx.fillText(String(Math.round(v * 10) / 10), left - 3, y(v));
    }
    ctx.textAlign = "left";
    ctx.textBaseline = "alphabetic";
    ctx.fillText("-" + (span >= 120 ? Math.round(span / 60) + " min" : span + " s"), left, h - 1);
    ctx.textAlign = "right";
    ctx.fillText("now", right, h - 1);

    series.forEach((s, i) => {
      const st = style(i);
      ctx.strokeStyle = st.color;
      ctx.lineWidth = 1.6;
      ctx.setLineDash(st.dash);
      ctx.beginPath();
      let prev = null, started = false;
      for (const [t, v] of s.points) {
        if (now - t > span) { prev = v; continue; }  // older: only where the line starts
        const px = x(t), before = y(prev === null ? v : prev);
        if (!started) { ctx.moveTo(prev === null ? px : left, before); started = true; }
        ctx.lineTo(px, before);
        ctx.lineTo(px, y(v));
        prev = v;
      }
      if (prev !== null) ctx.lineTo(right, y(prev));
      ctx.stroke();
    });
  }

  return { draw, style };
})();
