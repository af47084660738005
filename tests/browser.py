"""Headless Chromium for the page's browser tests: Debian's ``chromium`` driven by Playwright (its
sync API, on a thread of its own so the trio test keeps running the nodes). No browser is downloaded:
``executable_path`` is the system's chromium; a machine without it fails the test, never skips it
(.ci/run installs it).

``async with Browser() as b``: ``await b.do(fn)`` runs ``fn(context)`` on the browser's thread, where
``context`` is a Playwright BrowserContext (a desktop and a phone context are made with
``b.context(...)``).
"""

from __future__ import annotations

import queue
import shutil
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import trio

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "ui"  # screenshots (git-ignored); CI keeps the folder
DESKTOP = {"width": 1280, "height": 860}
PHONE = {"width": 390, "height": 844}


class Browser:
    def __init__(self) -> None:
        self._jobs: queue.Queue[tuple[Callable[[], Any], trio.lowlevel.TrioToken, Any] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name="playwright", daemon=True)
        self._browser: Any = None

    def _serve(self) -> None:
        from playwright.sync_api import sync_playwright

        executable = shutil.which("chromium")
        with sync_playwright() as pw:
            self._browser = None
            while True:
                job = self._jobs.get()
                if job is None:
                    break
                fn, token, done = job
                try:
                    if self._browser is None:
                        if executable is None:
                            raise RuntimeError("no chromium on PATH: apt-get install -y chromium (.ci/run does)")
                        self._browser = pw.chromium.launch(
                            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
                        )
                    result: Any = ("ok", fn())
                except BaseException as exc:  # handed back to the trio side, raised there
                    result = ("error", exc)
                trio.from_thread.run_sync(done, result, trio_token=token)
            if self._browser is not None:
                self._browser.close()

    async def do(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the browser's thread; its result, or its exception raised here."""
        box: list[Any] = []
        event = trio.Event()

        def done(result: Any) -> None:
            box.append(result)
            event.set()

        self._jobs.put((lambda: fn(*args), trio.lowlevel.current_trio_token(), done))
        await event.wait()
        kind, value = box[0]
        if kind == "error":
            raise value
        return value

    def new_context(self, viewport: dict[str, int], **options: Any) -> Any:
        """(browser thread) A fresh context, as a new browser profile: no cookies."""
        return self._browser.new_context(viewport=viewport, **options)

    async def __aenter__(self) -> Browser:
        self._thread.start()
        await self.do(lambda: None)  # launches chromium
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._jobs.put(None)
        await trio.to_thread.run_sync(self._thread.join, 30)


def shoot(page: Any, name: str, phone_context: Any) -> None:
    """(browser thread) Screenshots of ``page``'s URL at desktop width and, in the phone context
    (sharing no cookies: it gets the same session cookie), at phone width."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    phone_context.clear_cookies()
    phone_context.add_cookies(page.context.cookies())
    phone = phone_context.new_page()
    phone.goto(page.url)
    phone.wait_for_load_state("load")
    width = phone.evaluate("document.documentElement.scrollWidth")
    wide = phone.evaluate(
        "[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 391)"
        ".slice(0, 8).map(e => e.tagName + '.' + e.className + '#' + e.id)"
    )
    phone.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    phone.close()
    assert width <= PHONE["width"] + 1, f"{name} scrolls sideways at phone width ({width}px): {wide}"


def until(page: Any, expression: str, timeout_s: float = 20.0) -> None:
    """(browser thread) Poll ``expression`` in the page until it is truthy (Playwright's
    wait_for_function compiles its predicate with eval, which the page's CSP rightly forbids)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not page.evaluate(expression):
        assert time.monotonic() < deadline, f"still false after {timeout_s} s: {expression}"
        page.wait_for_timeout(100)
