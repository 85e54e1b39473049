"""Start ``scarguide serve`` as a real process on loopback for tests, and stop it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import httpx

from assistant.config import PACKAGE_ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    def __init__(self, env: dict[str, str], log: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False",
                    "ANONYMIZED_TELEMETRY": "False", "HF_HUB_OFFLINE": "1", **env}
        self.log = log
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 300) -> Server:
        scarguide = Path(sys.executable).with_name("scarguide")
        self.process = subprocess.Popen(
            [str(scarguide), "serve", "--port", str(self.port)],
            cwd=PACKAGE_ROOT,
            env=self.env,
            stdout=self.log.open("ab"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited: {self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise TimeoutError(f"server not healthy in {timeout} s: {self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(30)


@contextmanager
def running(env: dict[str, str], log: Path, timeout: float = 300):
    server = Server(env, log).start(timeout)
    try:
        yield server
    finally:
        server.kill(signal.SIGTERM)
