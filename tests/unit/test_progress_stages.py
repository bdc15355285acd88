"""Progress from the core names its stage from the shared vocabulary (progress.Stage),
so every view labels it: a model's download counts bytes, its loading counts steps."""

from __future__ import annotations

import http.server
import threading

from lookalike.core.progress import Stage


def test_a_model_download_reports_bytes_under_the_download_stage(tmp_path):
    from lookalike.core.runtime import download as _download

    payload = b"w" * (3 * 2**20)

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)  # loopback only
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    seen = []
    try:
        _download.fetch(
            f"http://127.0.0.1:{srv.server_address[1]}/w.bin", tmp_path / "w.bin", what="weights", progress=seen.append
        )
    finally:
        srv.shutdown()
        srv.server_close()
    assert seen and all(p.stage is Stage.DOWNLOAD for p in seen)
    assert Stage(seen[-1].stage).counts_bytes and seen[-1].done == seen[-1].total == len(payload)


def test_model_loading_steps_are_the_load_model_stage():
    from lookalike.core.runtime import models as runtime

    seen = []
    runtime.report(seen.append, 1, 3, "checking the weights")
    assert seen[0].stage is Stage.LOAD_MODEL and not Stage(seen[0].stage).counts_bytes
