"""A real HTTP server on a free loopback port that serves images with scripted failures.

server.script("/flaky.png", data, fail_first=2)     # 503 twice, then the image
server.script("/down.png", data, fail_first=10**9)  # always 503
server.script("/slow.png", data, delay_s=12)        # the image, after a delay
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Script:
    data: bytes
    fail_first: int = 0
    delay_s: float = 0.0
    hits: list[float] = field(default_factory=list)  # time.time() of every request


class ImageServer:
    def __init__(self) -> None:
        self.scripts: dict[str, Script] = {}
        scripts = self.scripts

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                script = scripts.get(self.path)
                if script is None:
                    self.send_error(404)
                    return
                script.hits.append(time.time())
                if len(script.hits) <= script.fail_first:
                    self.send_error(503, "scripted failure")
                    return
                time.sleep(script.delay_s)
                self.send_response(200)
                self.send_header("Content-Type", "image/png")
                self.send_header("Content-Length", str(len(script.data)))
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):  # the client gave up or was killed
                    self.wfile.write(script.data)

            def log_message(self, *_args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def script(self, path: str, data: bytes, fail_first: int = 0, delay_s: float = 0.0) -> str:
        """Serve `data` at `path` as scripted; returns its URL."""
        self.scripts[path] = Script(data, fail_first, delay_s)
        return f"http://127.0.0.1:{self._server.server_address[1]}{path}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
