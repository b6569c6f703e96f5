"""external-service: HTTP on 8080; each request asks the counter service (the URL given as
the first argument) for the next count and answers with it and this host's name, as JSON."""

import http.server
import json
import socket
import sys
import urllib.request

PORT = 8080
COUNTER_URL = sys.argv[1] if len(sys.argv) > 1 else "http://localhost:8080/"


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/health":
            status, body = 200, {"status": "ok"}
        else:
            try:
                with urllib.request.urlopen(COUNTER_URL, timeout=5) as r:
                    status, body = 200, {"count": int(r.read().decode().strip())}
            except (OSError, ValueError) as e:
                status, body = 502, {"error": f"counter service at {COUNTER_URL}: {e}"}
        body["hostname"] = socket.gethostname()
        data = (json.dumps(body) + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    print(f"external-service listening on {PORT}, counter at {COUNTER_URL}", flush=True)
    http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
