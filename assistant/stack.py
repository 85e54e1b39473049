"""A scaled-out deployment on loopback, every engine real: PostgreSQL (Debian's package),
Chroma as a server, the packaged models behind llama.cpp's OpenAI-compatible server (one
for answers, one for triage's check, so neither evicts the other's prompt), and N API
workers sharing them. The tests and ``scarguide loadtest --stack`` start it; it lives in
one temporary folder and is gone when stopped."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from assistant.config import PACKAGE_ROOT

BIN = Path(sys.executable).parent
PG_BIN = next(iter(sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)), None)
QUIET = {"GRADIO_ANALYTICS_ENABLED": "False", "ANONYMIZED_TELEMETRY": "False",
         "HF_HUB_OFFLINE": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, timeout: float, process: subprocess.Popen, log: Path,
             workers: int = 1) -> None:
    """Until ``url`` answers below 500; behind one port, ``workers`` processes warm up each
    on its own and any of them may answer, so several workers must answer 10 times each
    running, every time on a new connection."""
    import httpx

    in_a_row = 1 if workers == 1 else 10 * workers
    deadline = time.monotonic() + timeout
    healthy = 0
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{url}: process exited\n{log.read_text()[-3000:]}")
        try:
            healthy = healthy + 1 if httpx.get(url, timeout=3).status_code < 500 else 0
        except httpx.HTTPError:
            healthy = 0
        if healthy >= in_a_row:
            return
        time.sleep(0.5 if healthy == 0 else 0.1)
    raise TimeoutError(f"{url} not up in {timeout} s\n{log.read_text()[-3000:]}")


class Processes:
    """Processes started for a deployment, each logging to ``root/<name>.log``; stopped
    (their whole process groups) by :meth:`stop`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.running: list[subprocess.Popen] = []
        self.cleanup: list[Path] = []
        self.started: dict[str, tuple[subprocess.Popen, tuple]] = {}

    def start(self, name: str, args: list[str], env: dict | None = None,
              user: str | None = None) -> tuple[subprocess.Popen, Path]:
        log = self.root / f"{name}.log"
        command = (args, env, user)
        if user:
            args = ["runuser", "-u", user, "--", *args]
        process = subprocess.Popen(args, stdout=log.open("ab"), stderr=subprocess.STDOUT,
                                   env={**os.environ, **(env or {})},
                                   cwd="/" if user else PACKAGE_ROOT, start_new_session=True)
        self.running.append(process)
        self.started[name] = (process, command)
        return process, log

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        process = self.started[name][0]
        if process.poll() is None:
            os.killpg(process.pid, sig)
        process.wait(60)

    def restart(self, name: str) -> tuple[subprocess.Popen, Path]:
        """Start ``name`` again with the command it was first started with."""
        args, env, user = self.started[name][1]
        return self.start(name, args, env, user)

    def stop(self) -> None:
        for process in reversed(self.running):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.running:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
        for folder in self.cleanup:
            shutil.rmtree(folder, ignore_errors=True)


def start_postgres(procs: Processes) -> str:
    """A fresh PostgreSQL cluster on a free loopback port; its SQLAlchemy URL."""
    if PG_BIN is None:
        raise RuntimeError("PostgreSQL is not installed: `make postgres` installs Debian's "
                           "package")
    # a folder the server's own user can reach (pytest's are private to root)
    root = Path(tempfile.mkdtemp(prefix="scarguide-pg-"))
    procs.cleanup.append(root)
    data = root / "pg"
    user = "postgres" if os.geteuid() == 0 else None  # the server refuses to run as root
    if user:
        os.chmod(root, 0o755)
        shutil.chown(root, user)
    init = ["runuser", "-u", user, "--"] if user else []
    done = subprocess.run([*init, str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U",
                           "scarguide", "--no-sync"], capture_output=True, text=True, cwd="/")
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    port = free_port()
    process, log = procs.start(
        "postgres",
        [str(PG_BIN / "postgres"), "-D", str(data), "-p", str(port), "-k", str(data),
         "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "max_connections=200"],
        user=user,
    )
    url = f"postgresql+psycopg://scarguide@127.0.0.1:{port}/postgres"
    import psycopg

    deadline = time.monotonic() + 60
    while True:
        try:
            psycopg.connect(f"postgresql://scarguide@127.0.0.1:{port}/postgres").close()
            return url
        except psycopg.OperationalError:
            if time.monotonic() > deadline or process.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:]) from None
            time.sleep(0.3)


def start_model_server(procs: Processes, name: str, model: Path, alias: str,
                       threads: int = 2, context: int = 4096) -> str:
    """The packaged model behind llama.cpp's OpenAI-compatible server; its /v1 URL."""
    port = free_port()
    process, log = procs.start(name, [sys.executable, "-m", "llama_cpp.server", "--model",
                                      str(model), "--model_alias", alias, "--host",
                                      "127.0.0.1", "--port", str(port), "--n_ctx",
                                      str(context), "--n_threads", str(threads)])
    wait_for(f"http://127.0.0.1:{port}/v1/models", 300, process, log)
    return f"http://127.0.0.1:{port}/v1"


def start_chroma(procs: Processes, path: Path) -> str:
    port = free_port()
    process, log = procs.start("chroma", [str(BIN / "chroma"), "run", "--path", str(path),
                                          "--host", "127.0.0.1", "--port", str(port)])
    wait_for(f"http://127.0.0.1:{port}/api/v2/heartbeat", 120, process, log)
    return f"http://127.0.0.1:{port}"


def scaled(procs: Processes, data_dir: Path, workers: int = 2,
           model: str = "qwen2.5-coder-1.5b", triage_server: bool = True,
           model_dir: Path | None = None, **settings: str) -> dict[str, str]:
    """Start the whole scaled deployment; ``settings`` are more SCARGUIDE_* values
    (lower-case names). Without ``triage_server``, triage runs its patterns and screen
    only (its model check off). The packaged model is joined under ``model_dir``
    (default: ``data_dir``). Returns the URLs and the workers' environment."""
    from assistant.models import model_path

    database = start_postgres(procs)
    chroma = start_chroma(procs, procs.root / "chroma")
    path = model_path(model, model_dir or data_dir)
    answers = start_model_server(procs, "llm", path, model)
    triage = start_model_server(procs, "llm-triage", path, model) if triage_server else None
    env = {
        **QUIET,
        "SCARGUIDE_DATA_DIR": str(data_dir),
        "SCARGUIDE_DATABASE_URL": database,
        "SCARGUIDE_SESSION_STORE": "database",
        "SCARGUIDE_CHROMA_MODE": "http",
        "SCARGUIDE_CHROMA_URL": chroma,
        "SCARGUIDE_LLM_BACKEND": "openai",
        "SCARGUIDE_OPENAI_BASE_URL": answers,
        **({"SCARGUIDE_TRIAGE_OPENAI_BASE_URL": triage} if triage else
           {"SCARGUIDE_TRIAGE_MODEL_CHECK": "false"}),
        "SCARGUIDE_OPENAI_MODEL": model,
        "SCARGUIDE_OPENAI_API_KEY": "not-needed-on-loopback",
        # llama-cpp-python's server takes the schema the older way
        "SCARGUIDE_OPENAI_RESPONSE_FORMAT": "json_object",
        **{f"SCARGUIDE_{k.upper()}": v for k, v in settings.items()},
    }
    subprocess.run([str(BIN / "scarguide"), "ingest", "--quiet"], env={**os.environ, **env},
                   cwd=PACKAGE_ROOT, check=True, capture_output=True)
    port = free_port()
    api, log = procs.start("api", [str(BIN / "scarguide"), "serve", "--port", str(port),
                                   "--workers", str(workers)], env=env)
    url = f"http://127.0.0.1:{port}"
    wait_for(f"{url}/healthz", 300, api, log, workers=workers)
    return {"url": url, "database": database, "chroma": chroma, "api_pid": str(api.pid),
            "api_log": str(log), **env}
