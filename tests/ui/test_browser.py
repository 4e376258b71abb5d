"""The dashboard in a real browser: Debian's chromium, headless, driven by Playwright (its Python
package only: the browser is the system's, nothing is downloaded). A real gateway on Redis
serves a one-slot group whose calls a fake upstream holds; the test signs in with the keyboard,
watches a lane's waiting count rise and fall and a deployment cool down after failures, and
saves screenshots under tests/artefacts/."""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.support.cluster import chat_body
from tests.ui.scenario import MASTER, Scene, fill_line, scene, tiered

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = Path(__file__).resolve().parents[1] / "artefacts"

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(scripts/test.sh installs it: apt-get install chromium)")


def _hold_line(s: Scene, ready: threading.Event) -> list[int]:
    """In a thread: fill the line (the gate must be closed), then wait for every answer."""
    async def run() -> list[int]:
        async with httpx.AsyncClient(timeout=30) as client:
            calls = await fill_line(s, client)
            ready.set()
            return [r.status_code for r in await asyncio.gather(*calls)]

    return asyncio.run(run())


def test_dashboard_shows_the_lanes_live(fake_openai, redis_server) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTEFACTS.mkdir(exist_ok=True)
    args = ["--no-sandbox"] if os.getuid() == 0 else []  # chromium refuses root otherwise
    with scene(fake_openai, redis_server.url) as s, sync_playwright() as pw, \
            ThreadPoolExecutor(1) as pool:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page(viewport={"width": 1440, "height": 960})
        page.goto(f"{s.gw.url}/ui")

        # Sign in by keyboard; a wrong key is refused with the gateway's own message.
        key = page.get_by_label("Master key")
        expect(key).to_be_focused()
        key.fill("sk-not-the-key")
        page.keyboard.press("Enter")
        expect(page.get_by_role("alert")).to_have_text("Invalid API key.")
        key.fill(MASTER)
        page.keyboard.press("Enter")
        row = page.locator(f'#groups tr[data-group="{s.slot}"]')
        expect(row).to_be_visible()
        assert MASTER not in page.url
        assert page.evaluate("sessionStorage.getItem('laneway.dashboard.key')") == MASTER
        waiting, lanes = row.locator('[data-field="waiting"]'), row.locator('[data-field="lanes"]')
        expect(waiting).to_have_text("0")
        expect(page.locator("#tiers-section")).to_be_hidden()  # no priority_reservation here

        # The line rises while the one slot is held, and falls once it is let go.
        ready = threading.Event()
        with fake_openai.gate(s.slot):
            answers = pool.submit(_hold_line, s, ready)
            assert ready.wait(20)
            expect(waiting).to_have_text("2")
            expect(lanes).to_have_text("p0: 1 \u00b7 p5: 1")
            slot = page.locator(f'#deployments tr[data-group="{s.slot}"]')
            expect(slot.locator('[data-field="in-flight"]')).to_have_text("1 / 1")
            expect(slot.locator('[data-field="state"]')).to_have_text("\u25cf Full")
            page.screenshot(path=ARTEFACTS / "ui-line-full.png", full_page=True)
        assert answers.result(timeout=30) == [200, 200, 200]
        expect(waiting).to_have_text("0")
        expect(lanes).to_have_text("\u2014")

        # One failure (allowed_fails 1) cools the broken deployment down, with its reason.
        r = httpx.post(f"{s.gw.url}/v1/chat/completions", headers=s.gw.headers(),
                       json={"model": s.broken, "messages": [{"role": "user", "content": "x"}]})
        assert r.status_code >= 500
        state = page.locator(f'#deployments tr[data-group="{s.broken}"] [data-field="state"]')
        expect(state).to_contain_text("Cooling down")
        expect(state).to_contain_text("repeated failures")

        # The picture for the docs: a line again, its history, the cooldown, the key's row.
        with fake_openai.gate(s.slot):
            ready.clear()
            answers = pool.submit(_hold_line, s, ready)
            assert ready.wait(20)
            expect(waiting).to_have_text("2")
            tenant = page.locator("#tenants tbody tr", has_text=s.alias)
            expect(tenant).to_contain_text("$5.00")
            shot = ARTEFACTS / "ui-dashboard.png"
            page.screenshot(path=shot, full_page=True)
            print(f"dashboard screenshot: {shot}")
        assert answers.result(timeout=30) == [200, 200, 200]
        browser.close()


def test_dashboard_shows_each_reserved_tier(fake_openai) -> None:
    from playwright.sync_api import expect, sync_playwright

    args = ["--no-sandbox"] if os.getuid() == 0 else []
    with tiered(fake_openai, None) as (gw, slot, gold), sync_playwright() as pw, \
            ThreadPoolExecutor(1) as pool:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        page = browser.new_page()
        page.goto(f"{gw.url}/ui")
        page.get_by_label("Master key").fill(MASTER)
        page.keyboard.press("Enter")
        gold_row = page.locator(f'#tiers tr[data-group="{slot}"][data-tier="gold"]')
        expect(gold_row).to_contain_text("50 %")
        with fake_openai.gate(slot):
            held = pool.submit(httpx.post, f"{gw.url}/v1/chat/completions",
                               json=chat_body(slot), timeout=30,
                               headers={"authorization": f"Bearer {gold}"})
            expect(gold_row.locator('[data-field="in_flight"]')).to_have_text("1")
            default_row = page.locator(f'#tiers tr[data-group="{slot}"][data-tier="default"]')
            expect(default_row.locator('[data-field="in_flight"]')).to_have_text("0")
        assert held.result(timeout=30).status_code == 200
        expect(gold_row.locator('[data-field="in_flight"]')).to_have_text("0")
        browser.close()
