"""Headless Chromium driven over the DevTools protocol (aiohttp's WebSocket client, which
ray[default] brings): load a page, wait for it, evaluate checks in it, collect console
errors and failed loads, take a screenshot."""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.ports import free_port

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")


def find_chromium() -> str | None:
    return next((p for p in map(shutil.which, CANDIDATES) if p), None)


class Browser:
    def __init__(self, exe: str, width: int = 1280, height: int = 3000):
        self.port = free_port()
        self.profile = tempfile.mkdtemp(prefix="vidgist-chromium-")
        self.proc = subprocess.Popen(
            [
                exe,
                "--headless=new",
                "--no-sandbox",  # tests may run as root, where the sandbox refuses to start
                "--disable-gpu",
                "--no-first-run",
                "--autoplay-policy=no-user-gesture-required",
                f"--window-size={width},{height}",  # tall: lazy images are all in view
                f"--remote-debugging-port={self.port}",
                f"--user-data-dir={self.profile}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list") as r:
                    pages = [t for t in json.load(r) if t["type"] == "page"]
                if pages:
                    self.ws_url = pages[0]["webSocketDebuggerUrl"]
                    break
            except OSError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise RuntimeError("headless Chromium did not start within 30 s")
            time.sleep(0.2)

    def close(self) -> None:
        self.proc.kill()
        self.proc.wait(timeout=10)
        shutil.rmtree(self.profile, ignore_errors=True)

    def visit(self, url: str, checks: str, screenshot: Path | None = None) -> dict:
        """Load `url`, wait for its load event and a moment for media, evaluate the JS
        expression `checks` (its JSON-able value is returned as `checks`), and return it
        with the console errors, uncaught exceptions and failed requests seen."""
        return asyncio.run(self._visit(url, checks, screenshot))

    async def _visit(self, url: str, checks: str, screenshot: Path | None) -> dict:
        import aiohttp

        errors: list[str] = []
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(self.ws_url, max_msg_size=0) as ws,
        ):
            ids = iter(range(1, 1 << 30))
            pending: dict[int, asyncio.Future] = {}
            loaded = asyncio.get_running_loop().create_future()

            async def reader() -> None:
                async for msg in ws:
                    m = json.loads(msg.data)
                    if "id" in m and m["id"] in pending:
                        pending.pop(m["id"]).set_result(m)
                    method = m.get("method")
                    p = m.get("params", {})
                    if method == "Runtime.consoleAPICalled" and p["type"] == "error":
                        errors.append(" ".join(str(a.get("value")) for a in p["args"]))
                    elif method == "Runtime.exceptionThrown":
                        errors.append(p["exceptionDetails"].get("text", "exception"))
                    elif method == "Log.entryAdded" and p["entry"]["level"] == "error":
                        errors.append(p["entry"]["text"] + " " + p["entry"].get("url", ""))
                    elif method == "Network.loadingFailed" and not p.get("canceled"):
                        # (A media element cancels its own range requests once it has
                        # what it wants: those are not failures.)
                        errors.append(f"load failed: {p.get('errorText')}")
                    elif method == "Page.loadEventFired" and not loaded.done():
                        loaded.set_result(True)

            async def call(method: str, **params) -> dict:
                n = next(ids)
                pending[n] = asyncio.get_running_loop().create_future()
                await ws.send_json({"id": n, "method": method, "params": params})
                return await asyncio.wait_for(pending[n], 30)

            task = asyncio.create_task(reader())
            for domain in ("Page", "Runtime", "Log", "Network"):
                await call(f"{domain}.enable")
            await call("Page.navigate", url=url)
            await asyncio.wait_for(loaded, 30)
            await asyncio.sleep(0.7)  # video metadata and late images
            result = await call("Runtime.evaluate", expression=checks, returnByValue=True)
            if screenshot is not None:
                shot = await call("Page.captureScreenshot", format="png")
                screenshot.write_bytes(base64.b64decode(shot["result"]["data"]))
            task.cancel()
        value = result["result"]["result"].get("value")
        return {"checks": value, "errors": errors}
