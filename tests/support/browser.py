"""Headless Chromium for the browser tests: where it is, how it starts, and what counts as a broken page.

Shared by tests/e2e/test_operator_browser.py (``oncopipe ui``) and tests/e2e/test_topology_browser.py (the native
production topology).
"""

from __future__ import annotations

import shutil
import urllib.parse

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


class BrowserWatch:
    """What the page did that an operator would call broken: console errors, HTTP errors, off-host requests."""

    def __init__(self, page) -> None:
        self.problems: list[str] = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(f"console error: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(f"HTTP {r.status}: {r.url}"))
        page.on("request", self._request)

    def _request(self, request) -> None:
        url = urllib.parse.urlsplit(request.url)
        if url.scheme in ("data", "blob", "about") or url.hostname == "127.0.0.1":
            return
        self.problems.append(f"request off this host: {request.url}")

    def take(self) -> list[str]:
        found, self.problems = self.problems, []
        return found

    def assert_clean(self, where: str) -> None:
        problems = self.take()
        assert not problems, f"{where}: " + "; ".join(problems[:10])


def settle(page) -> None:
    """Let the page draw before a screenshot (the Airflow UI polls its API: the network is never idle)."""
    page.wait_for_load_state("load")
    page.wait_for_timeout(1000)


def open_view(page, name: str):
    """Open an operator view from the UI navigation (the Plugins menu); return the frame it is embedded in."""
    page.goto("/")
    page.get_by_role("button", name="Plugins").click()
    page.get_by_role("menuitem", name=name).click()
    frame = page.frame_locator("iframe").first
    # Attached, not visible: the dbt docs page lays its body out with nothing in flow (a zero-size body, which
    # Playwright calls hidden); every caller then waits for the content it checks.
    frame.locator("body").wait_for(state="attached")
    return frame


def open_log_at(page, url: str, text: str, timeout_s: float = 60.0):
    """Open a task's log page and bring ``text`` into view; return its locator.

    A log longer than the view opens at its end, and the viewer draws only the lines in view, so a line near the top
    exists in the page only after "scroll to top". That button appears once the log has loaded, which on a loaded
    machine is later than any fixed wait (a clean-clone run waited 1 s, found no button, and then waited 60 s for a
    line never drawn): poll until the line shows, clicking the button whenever it is there.
    """
    import time

    page.goto(url)
    page.locator("button[aria-label='Log Settings']").first.wait_for()
    line = page.get_by_text(text).first
    to_top = page.locator("button[aria-label*='scroll to top']")
    deadline = time.monotonic() + timeout_s
    while True:
        if line.is_visible():
            return line
        if time.monotonic() > deadline:
            raise AssertionError(f"{url}: the log never showed {text!r} within {timeout_s:.0f} s")
        if to_top.count() and to_top.first.is_visible():
            to_top.first.click()
        page.wait_for_timeout(500)
