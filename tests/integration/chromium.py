"""Headless Chromium (Debian's /usr/bin/chromium) driven over the DevTools protocol.

A small CDP client over aiohttp's websocket: no browser download, no extra package.
The browser runs in its own process group with its own profile directory, may resolve
no host but 127.0.0.1 (the pages must work offline), and is stopped with its group.
Each page collects what counts as a console error: ``console.error``/``assert`` calls
(Runtime.consoleAPICalled), uncaught exceptions (Runtime.exceptionThrown) and the
browser's own error entries (Log.entryAdded: failed loads, CSP violations).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp

from tests.integration.support import free_port, http_get

CHROMIUM = Path("/usr/bin/chromium")
COMMAND_TIMEOUT_S = 30.0


@contextlib.contextmanager
def chromium(profile: Path, log: Path) -> Iterator[int]:
    """Start headless Chromium; yields its DevTools port. Stopped (its group) on exit."""
    assert CHROMIUM.exists(), "chromium is missing: `make test` installs it (apt chromium)"
    port = free_port()
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [
                str(CHROMIUM),
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                f"--remote-debugging-port={port}",
                "--remote-debugging-address=127.0.0.1",
                f"--user-data-dir={profile}",
                "--no-first-run",
                "--no-default-browser-check",
                "--disable-extensions",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-default-apps",
                "--mute-audio",
                "--hide-scrollbars",
                "--font-render-hinting=none",
                "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
                "about:blank",
            ],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                raise AssertionError(f"chromium exited with {proc.returncode}: {log.read_text()}")
            with contextlib.suppress(OSError):
                if http_get(f"http://127.0.0.1:{port}/json/version", timeout=2)[0] == 200:
                    break
            if time.monotonic() > deadline:
                raise AssertionError(f"chromium's DevTools did not answer: {log.read_text()}")
            time.sleep(0.2)
        yield port
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


class Page:
    """One browser tab: CDP commands, its events, the console errors it collected."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.errors: list[str] = []
        self.changed = asyncio.Event()
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            doc = json.loads(message.data)
            if "id" in doc:
                future = self.pending.pop(doc["id"], None)
                if future is not None and not future.done():
                    future.set_result(doc)
                continue
            self.events.append(doc)
            self._note_error(doc)
            self.changed.set()

    def _note_error(self, doc: dict[str, Any]) -> None:
        method, params = doc.get("method"), doc.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            texts = [str(a.get("value", a.get("description", ""))) for a in params.get("args", [])]
            self.errors.append(f"console.{params['type']}: {' '.join(texts)}")
        elif method == "Runtime.exceptionThrown":
            details = params.get("exceptionDetails", {})
            exception = details.get("exception", {})
            self.errors.append(f"exception: {exception.get('description') or details.get('text')}")
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            entry = params["entry"]
            self.errors.append(
                f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}"
            )

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        await self.ws.send_str(json.dumps({"id": ident, "method": method, "params": params}))
        answer = await asyncio.wait_for(future, COMMAND_TIMEOUT_S)
        if "error" in answer:
            raise AssertionError(f"{method}: {answer['error']}")
        return dict(answer.get("result", {}))

    async def goto(self, url: str, within_s: float = 30.0) -> None:
        """Navigate and wait for the load event."""
        seen = len(self.events)
        await self.send("Page.navigate", url=url)
        await self.wait_event("Page.loadEventFired", within_s, after=seen)

    async def wait_event(self, method: str, within_s: float, after: int = 0) -> dict[str, Any]:
        deadline = time.monotonic() + within_s
        while True:
            for event in self.events[after:]:
                if event.get("method") == method:
                    return event
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no {method} within {within_s} s")
            self.changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.changed.wait(), remaining)

    async def evaluate(self, expression: str) -> Any:
        """The JSON value of a JavaScript expression in the page (promises awaited)."""
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True
        )
        if "exceptionDetails" in result:
            raise AssertionError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_until(self, expression: str, within_s: float, what: str) -> Any:
        deadline = time.monotonic() + within_s
        while True:
            value = await self.evaluate(expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {within_s:.0f} s waiting for {what}")
            await asyncio.sleep(0.25)

    async def screenshot(self, path: Path) -> None:
        """The whole page (not only the viewport) as PNG."""
        metrics = await self.send("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}
        shot = await self.send(
            "Page.captureScreenshot", format="png", captureBeyondViewport=True, clip=clip
        )
        await asyncio.to_thread(_write, path, base64.b64decode(shot["data"]))


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@contextlib.asynccontextmanager
async def open_page(
    devtools_port: int, width: int = 1400, height: int = 900
) -> AsyncIterator[Page]:
    """A new tab with Runtime, Log and Page events on and a desktop-sized viewport."""
    base = f"http://127.0.0.1:{devtools_port}"
    async with aiohttp.ClientSession() as session:
        async with session.put(f"{base}/json/new?about:blank") as response:
            target = await response.json(content_type=None)
        try:
            async with session.ws_connect(
                target["webSocketDebuggerUrl"], max_msg_size=64 * 1024 * 1024
            ) as ws:
                page = Page(ws)
                try:
                    for domain in ("Runtime", "Log", "Page"):
                        await page.send(f"{domain}.enable")
                    await page.send(
                        "Emulation.setDeviceMetricsOverride",
                        width=width,
                        height=height,
                        deviceScaleFactor=1,
                        mobile=False,
                    )
                    yield page
                finally:
                    page.reader.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await page.reader
        finally:
            async with session.get(f"{base}/json/close/{target['id']}") as response:
                await response.read()
