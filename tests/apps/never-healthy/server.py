"""The never-healthy sample app: listens on 127.0.0.1:$NUA_PORT and answers 500 to everything."""

from __future__ import annotations

import os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Broken(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = b"not ready, and never will be\n"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    port = int(os.environ["NUA_PORT"])
    print(f"never-healthy on 127.0.0.1:{port}, answering 500", flush=True)
    ThreadingHTTPServer(("127.0.0.1", port), Broken).serve_forever()
