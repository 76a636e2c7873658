"""The hello sample app: one page with its version, its GREETING and a visit count.

Listens on 127.0.0.1, on the port given as its argument ($NUA_PORT); counts
visits in $NUA_DATA_DIR/visits, so that an upgrade can show the data was kept.
/health answers "ok" without counting, so health checks leave the count alone.
Standard library only.
"""

from __future__ import annotations

import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def visits() -> int:
    """Count this visit in the data folder (0 when the app has none)."""
    folder = os.environ.get("NUA_DATA_DIR")
    if not folder:
        return 0
    path = Path(folder) / "visits"
    count = int(path.read_text() or 0) + 1 if path.exists() else 1
    path.write_text(str(count))
    return count


class Page(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/health":
            self.answer(b"ok\n")
            return
        version = os.environ.get("NUA_APP_VERSION", "?")
        greeting = os.environ.get("GREETING", "")
        self.answer(f"<p>hello {version} {greeting} visits={visits()}</p>\n".encode())

    def answer(self, body: bytes) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(sys.argv[1])
    print(f"hello {os.environ.get('NUA_APP_VERSION', '?')} on 127.0.0.1:{port}", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Page).serve_forever()
