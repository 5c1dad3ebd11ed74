"""The other end of the runner protocol, in Python: a runner process driven over
its stdin/stdout, one JSON request and one JSON reply a line, with a time limit on
every reply. The lab drives runners from Swift (DeployedRunner); this client is
for the Python tests of the plugins and for the benchmarks. It is not deployed
to boards.
"""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
from pathlib import Path


class RunnerClientError(Exception):
    """The runner did not answer in time, or ended; the message says which, with its stderr's end."""


class RunnerProcess:
    """A runner started as `python script` in `cwd`, its stderr kept in `stderr_path`."""

    def __init__(self, script: Path, cwd: Path, stderr_path: Path, *, env: dict | None = None,
                 timeout_s: float = 300) -> None:
        self.stderr_path = Path(stderr_path)
        self.timeout_s = timeout_s
        self._stderr = open(self.stderr_path, "w")
        self.process = subprocess.Popen([sys.executable, str(script)], cwd=cwd, text=True, env=env,
                                        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr)
        self._lines: queue.Queue = queue.Queue()
        # A reader thread, so a runner that never answers costs a timeout, not a hang.
        threading.Thread(target=self._read, daemon=True).start()
        self.greeting = self._reply()

    def _read(self) -> None:
        for line in self.process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _reply(self) -> dict:
        try:
            line = self._lines.get(timeout=self.timeout_s)
        except queue.Empty:
            raise RunnerClientError(f"the runner did not answer within {self.timeout_s} s") from None
        if line is None:
            self._stderr.flush()
            raise RunnerClientError("the runner closed stdout; its stderr:\n" + self.stderr_path.read_text()[-4000:])
        return json.loads(line)

    def send(self, line: str) -> dict:
        """One raw request line (malformed ones included), and the reply."""
        self.process.stdin.write(line + "\n")
        self.process.stdin.flush()
        return self._reply()

    def request(self, **fields) -> dict:
        return self.send(json.dumps(fields))

    def quit(self, timeout_s: float = 30) -> int:
        """Asks the runner to quit; its exit status."""
        reply = self.request(op="quit")
        if reply != {"ok": True}:
            raise RunnerClientError(f"quit was answered with {reply}")
        return self.process.wait(timeout=timeout_s)

    def close(self) -> None:
        """Ends the process however it stands."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self._stderr.close()

    def __enter__(self) -> "RunnerProcess":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()
