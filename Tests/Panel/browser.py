"""Headless Chromium driven through the DevTools protocol over a pipe.

`chromium --remote-debugging-pipe` reads protocol commands from file descriptor 3
and writes answers and events to descriptor 4, each a JSON text ended by a NUL
byte: no websocket, no package beyond the standard library. The panel tests use
it to sign in, wait for a page to say it is drawn, query its DOM and take
screenshots.
"""

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time


def chromium_path():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


class BrowserError(RuntimeError):
    pass


class Browser:
    def __init__(self, width=1280, height=900):
        path = chromium_path()
        if path is None:
            raise BrowserError("no chromium on PATH (scripts/setup installs the Debian package)")
        self.profile = tempfile.mkdtemp(prefix="mlbench-chromium-")
        to_browser_read, self._to_browser = os.pipe()
        self._from_browser, from_browser_write = os.pipe()

        def wire():
            # The protocol's descriptors in the child: 3 reads commands, 4 writes answers.
            high_read, high_write = os.dup(to_browser_read), os.dup(from_browser_write)
            os.dup2(high_read, 3)
            os.dup2(high_write, 4)

        self.process = subprocess.Popen(
            [path, "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
             "--no-default-browser-check", "--disable-extensions", "--hide-scrollbars", "--mute-audio",
             "--remote-debugging-pipe", f"--user-data-dir={self.profile}", f"--window-size={width},{height}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            preexec_fn=wire, close_fds=False)
        os.close(to_browser_read)
        os.close(from_browser_write)
        self._buffer = b""
        self._next = 0
        self.events = []
        self.width, self.height = width, height
        target = self.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page.enable", "Runtime.enable"):
            self.send(domain, session=True)

    def close(self):
        try:
            self.send("Browser.close", timeout=5)
        except Exception:
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        for descriptor in (self._to_browser, self._from_browser):
            try:
                os.close(descriptor)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- protocol

    def _read_message(self, deadline):
        while b"\0" not in self._buffer:
            if time.monotonic() > deadline:
                raise BrowserError("chromium did not answer in time")
            chunk = os.read(self._from_browser, 1 << 20)
            if not chunk:
                raise BrowserError("chromium closed the protocol pipe: " + self.process.stderr.read().decode(errors="replace")[-2000:])
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=False, timeout=30):
        self._next += 1
        message = {"id": self._next, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + timeout
        while True:
            answer = self._read_message(deadline)
            if answer.get("id") == self._next:
                if "error" in answer:
                    raise BrowserError(f"{method}: {answer['error']}")
                return answer.get("result", {})
            self.events.append(answer)

    # ---- what the tests use

    def evaluate(self, expression, timeout=30):
        result = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                           session=True, timeout=timeout)
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression}: {result['exceptionDetails']}")
        return result["result"].get("value")

    def open(self, url, until="ready", timeout=60):
        """Loads `url` and waits until <body data-state> is `until` (or "error": raised)."""
        # Marked first, so that the page left behind is never taken for the new one.
        self.evaluate("document.body && (document.body.dataset.state = 'navigating'); true")
        self.send("Page.navigate", {"url": url}, session=True)
        return self.wait_for_state(until, timeout)

    def wait_for_state(self, until="ready", timeout=60):
        deadline = time.monotonic() + timeout
        state = None
        while time.monotonic() < deadline:
            try:
                state = self.evaluate("document.body ? document.body.dataset.state : null")
            except BrowserError:
                # Asked while the page was being replaced (its context destroyed): ask again.
                time.sleep(0.2)
                continue
            if state == until:
                return state
            if state == "error":
                raise BrowserError("the page reports: " + str(self.evaluate("document.getElementById('error').textContent")))
            time.sleep(0.2)
        raise BrowserError(f"the page did not reach state '{until}' within {timeout} s (state: {state})")

    def wait_for(self, expression, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.25)
        raise BrowserError(f"not true within {timeout} s: {expression}")

    def dom(self):
        return self.evaluate("document.documentElement.outerHTML")

    def screenshot(self, path):
        """A PNG of the whole page (the viewport stretched to the page's height)."""
        height = int(self.evaluate("Math.ceil(document.documentElement.scrollHeight)") or self.height)
        self.send("Emulation.setDeviceMetricsOverride",
                  {"width": self.width, "height": max(self.height, height), "deviceScaleFactor": 1, "mobile": False}, session=True)
        data = self.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True}, session=True)["data"]
        self.send("Emulation.clearDeviceMetricsOverride", session=True)
        with open(path, "wb") as file:
            file.write(base64.b64decode(data))
        return path

    def errors(self):
        """Uncaught exceptions and console errors the pages reported so far."""
        out = []
        for event in self.events:
            method = event.get("method")
            if method == "Runtime.exceptionThrown":
                details = event["params"]["exceptionDetails"]
                out.append(details.get("exception", {}).get("description") or details.get("text"))
            elif method == "Runtime.consoleAPICalled" and event["params"].get("type") == "error":
                out.append(" ".join(str(a.get("value", a.get("description"))) for a in event["params"].get("args", [])))
        return out
