"""The portal in a real browser (headless system Chromium driven by Playwright).

Story: a notified body opens the portal of a running instrument and watches the
indication copy, the state, the software identifiers with their approval status
and the event counter change live - without reloading. A verification officer
re-pairs the sensor meanwhile (a legally relevant event), and the event counter
on the open page goes up. A screenshot is kept as the test's artifact.

Then the attacks of A_WEB_XSS: a similar unit (valid manufacturer certificate,
its own broker user) announces a status whose name fields carry ``<script>`` and
``<img onerror>`` payloads, and an operator sends a refused command whose
arguments carry them into the logbook. The page must show both literally and
never execute them: no dialog, no execution marker, no element created, no CSP
violation.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

from portal.portal_support import address_of, client_for, command, portal_url, send_commands
from testbed.broker_config import OFFICER
from testbed.pairing_ceremony import run_ceremony
from testbed.testing import TestbedRun
from wire.codec import encode
from wire.messages import ComponentStatus

pytestmark = [pytest.mark.mosquitto, pytest.mark.slow]

ARTIFACTS = Path(os.environ.get("TESTBED_ARTIFACTS", Path(__file__).parents[2] / "artifacts"))
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Records securitypolicyviolation events and would-be execution markers before any page script.
WATCH = """
window.__violations = [];
document.addEventListener('securitypolicyviolation',
    (e) => window.__violations.push(e.violatedDirective + ' ' + e.blockedURI));
"""


async def _text(page: Page, selector: str) -> str:
    return (await page.text_content(selector) or "").strip()


async def _wait_text(
    page: Page, selector: str, predicate: Callable[[str], bool], timeout_s: float = 15.0
) -> str:
    """Poll the element's text until ``predicate`` holds (from Python: the page's CSP
    forbids the eval that ``wait_for_function`` would need - as it should)."""
    end = time.monotonic() + timeout_s
    text = ""
    while time.monotonic() < end:
        text = (await page.text_content(selector) or "").strip()
        if predicate(text):
            return text
        await asyncio.sleep(0.2)
    pytest.fail(f"{selector} never satisfied the condition; last text: {text[:300]!r}")


async def _open(browser: Browser, url: str) -> tuple[Page, list[str]]:
    page = await browser.new_page(viewport={"width": 1280, "height": 1400})
    dialogs: list[str] = []

    async def on_dialog(dialog: object) -> None:
        dialogs.append(str(getattr(dialog, "message", "")))
        await dialog.dismiss()  # type: ignore[attr-defined]

    page.on("dialog", on_dialog)
    await page.add_init_script(WATCH)
    await page.goto(url)
    return page, dialogs


async def test_portal_shows_the_instrument_live(
    portal_testbed: TestbedRun, chromium: str
) -> None:
    run = portal_testbed
    url = portal_url(run)
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page, dialogs = await _open(browser, url)
            await _wait_text(page, "#state", lambda t: t == "OPERATIONAL")
            await _wait_text(page, "#vm", lambda t: t not in ("-", ""))
            assert "COPY" in await _text(page, "#indication-box h2")  # S: mixed indication
            for cid in ("mother-unit", "processing", "sensor-1"):
                row = page.locator(f"#software tr[data-component='{cid}']")
                await row.wait_for(timeout=10_000)
                cells = await row.locator("td").all_text_contents()
                assert cells[4] == "approved", cells
                assert len(cells[3]) == 64, cells  # the full software identifier (MID 8.3)
            storage_row = page.locator("#software tr[data-component='storage'] td")
            storage = await storage_row.all_text_contents()
            assert storage[4] == "not legally relevant"

            # Live: the indication moves on without a reload.
            record = await _text(page, "#record")
            await _wait_text(page, "#record", lambda t: t not in (record, "-"))
            await _wait_text(page, "#logbook-status", lambda t: t == "verified")

            # A legally relevant event (an authorized re-pairing) raises the event counter.
            before = int(await _text(page, "#event-counter"))
            result = await run_ceremony(
                run.dir, run.plain_broker_address, "sensor-1", reason="portal test re-verification"
            )
            assert result.ok, result.message
            await _wait_text(page, "#event-counter", lambda t: t.isdigit() and int(t) > before)
            await _wait_text(page, "#state", lambda t: t == "OPERATIONAL")
            await _wait_text(page, "#logbook", lambda t: "portal test re-verification" in t)

            await asyncio.to_thread(ARTIFACTS.mkdir, parents=True, exist_ok=True)
            shot = ARTIFACTS / f"portal-{time.strftime('%Y%m%dT%H%M%S')}.png"
            await page.screenshot(path=str(shot), full_page=True)
            print(f"portal screenshot: {shot}")
            assert (await asyncio.to_thread(shot.stat)).st_size > 10_000

            twin_page, _ = await _open(browser, url + "twin")
            await _wait_text(twin_page, "#twin", lambda t: "approval_id" in t)
            await twin_page.screenshot(path=str(ARTIFACTS / "portal-twin.png"), full_page=True)
            print(f"twin screenshot: {ARTIFACTS / 'portal-twin.png'}")
            assert dialogs == []
            assert await page.evaluate("window.__violations") == []
        finally:
            await browser.close()


PAYLOADS = {
    "name": "<script>window.__xss='status-script';alert('status')</script>",
    "label": "<img src=x onerror=\"window.__xss='status-img';alert('img')\">",
}
LOG_PAYLOAD = "<script>window.__xss='log'</script><img src=x onerror=alert('log')>"


async def test_script_payloads_are_shown_as_text_and_never_run(
    portal_testbed: TestbedRun, chromium: str
) -> None:
    run = portal_testbed
    url = portal_url(run)
    # The similar unit announces itself with crafted names (its own status topic: ACL).
    spare = "sensor-spare-1"
    status = ComponentStatus(
        component="remote_sensor", component_id=spare, online=True, time=time.time(),
        software_id="<script>alert('sid')</script>", detail=PAYLOADS,
    )
    async with client_for(address_of(run, spare), spare) as client:
        await client.publish(run.topics.status(spare), encode(status), qos=1, retain=True)
    # A refused command carries the payload into the logbook (command_refused, args).
    refused = command("set_parameter", issuer="operator", args={"note": LOG_PAYLOAD})
    replies = await send_commands(run, OFFICER, [refused])
    assert not replies[refused.command_id].ok

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            page, dialogs = await _open(browser, url)
            row = page.locator(f"#software tr[data-component='{spare}']")
            await row.wait_for(timeout=15_000)
            await _wait_text(page, "#logbook", lambda t: "window.__xss='log'" in t)
            detail = await _text(page, f"#software tr[data-component='{spare}'] td.detail")
            assert PAYLOADS["name"] in detail
            assert PAYLOADS["label"] in detail
            sid = await _text(page, f"#software tr[data-component='{spare}'] td.software-id")
            assert sid == "<script>alert('sid')</script>"
            log_text = await _text(page, "#logbook")
            assert "<script>window.__xss='log'</script>" in log_text
            await page.wait_for_timeout(1500)  # a few more live updates
            assert dialogs == []
            assert await page.evaluate("window.__xss") is None
            assert await page.evaluate("document.querySelectorAll('body script, img').length") == 0
            assert await page.evaluate("window.__violations") == []
        finally:
            await browser.close()
