"""A real HTTP server on 127.0.0.1 for the fetch tests, with switchable misbehaviour.

Each served file has a `mode`:
  good      200 with the body, or 206 for a `Range: bytes=N-` request (416 past the end)
  norange   always 200 with the whole body (a server that ignores Range)
  drop      announces the full Content-Length, sends half the body, then closes the connection
  slow      like good, but sends 1 KiB pieces with pauses (for the kill -9 test)
  missing   404
Every request's path and Range header are recorded in `requests`.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Served:
    body: bytes
    mode: str = "good"


@dataclass
class Recorded:
    path: str
    range: str | None


@dataclass
class FileServer:
    files: dict[str, Served] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)
    url: str = ""  # base URL ending in "/", set when started

    def serve(self, name: str, body: bytes, mode: str = "good") -> None:
        self.files[name] = Served(body, mode)

    def ranges(self, name: str) -> list[str | None]:
        """The Range header of every request for `name`, in order (None: no Range)."""
        return [r.range for r in self.requests if r.path == "/" + name]


def _handler(state: FileServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format, *args):  # keep the test output quiet
            pass

        def do_GET(self):
            state.requests.append(Recorded(self.path, self.headers.get("Range")))
            served = state.files.get(self.path.lstrip("/"))
            if served is None or served.mode == "missing":
                self._reply(404, b"not found\n")
                return
            body, mode = served.body, served.mode
            m = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
            if m and mode != "norange":
                start = int(m.group(1))
                if start >= len(body):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(body)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
                body = body[start:]
            else:
                self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if mode == "drop":
                self.wfile.write(body[: len(body) // 2])
                self.wfile.flush()
                self.close_connection = True
            elif mode == "slow":
                for i in range(0, len(body), 1024):
                    self.wfile.write(body[i:i + 1024])
                    self.wfile.flush()
                    time.sleep(0.05)
            else:
                self.wfile.write(body)

        def _reply(self, code: int, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def running_server() -> Iterator[FileServer]:
    """Start a FileServer on a free port of 127.0.0.1 in a thread; stop it afterwards."""
    state = FileServer()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    server.daemon_threads = True
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def refused_url() -> str:
    """A site URL on 127.0.0.1 where nothing listens (a port bound and released again)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"
