"""Two linked pseudo-terminals from socat: an RS-485 line without hardware.

The simulator's RTU server opens one end, the collector the other, and both
speak real RTU frames (CRC, silent units) through the kernel's tty layer.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path
from types import TracebackType


class SerialPair:
    def __init__(self, link_a: str | Path, link_b: str | Path, socat: str = "socat") -> None:
        self.link_a = Path(link_a)
        self.link_b = Path(link_b)
        self._socat = socat
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 5.0) -> SerialPair:
        """Start socat and return once both links exist."""
        if self._process is not None:
            return self
        executable = shutil.which(self._socat)
        if executable is None:
            raise RuntimeError(f"{self._socat} is not installed (Debian: apt-get install socat)")
        for link in (self.link_a, self.link_b):
            link.unlink(missing_ok=True)
        self._process = subprocess.Popen(
            [executable, "-d", "-d", f"pty,raw,echo=0,link={self.link_a}", f"pty,raw,echo=0,link={self.link_b}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while not (self.link_a.exists() and self.link_b.exists()):
            if self._process.poll() is not None:
                message = self._process.stderr.read().decode(errors="replace") if self._process.stderr else ""
                self._process = None
                raise RuntimeError(f"socat exited: {message.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"socat did not create {self.link_a} and {self.link_b} within {timeout} s")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=2.0)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stderr:
            process.stderr.close()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def __enter__(self) -> SerialPair:
        return self.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.stop()
