"""Starting a deployment: the readiness wait of ``assistant.stack``."""

from __future__ import annotations

import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from assistant.stack import wait_for


def test_a_deployment_is_up_only_when_every_worker_answers(tmp_path):
    """Two workers behind one port, one still warming: an answer from the ready one alone
    is not enough."""
    answers = iter([503, 200, 503, 200, 503] + [200] * 25)
    asked = []

    class Workers(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - the name http.server calls
            status = next(answers, 200)
            asked.append(status)
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Workers)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    log = tmp_path / "api.log"
    log.write_text("")
    try:
        wait_for(f"http://127.0.0.1:{server.server_port}/healthz", 30, process, log,
                 workers=2)
        assert asked == [503, 200, 503, 200, 503] + [200] * 20
    finally:
        process.kill()
        server.shutdown()
