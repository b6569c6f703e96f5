"""counter-service: HTTP on 8080; every request (but /health) adds one to a counter and is
answered with the new count."""

import http.server
import threading

PORT = 8080
count = 0
lock = threading.Lock()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        global count
        if self.path == "/health":
            body = "ok\n"
        else:
            with lock:
                count += 1
                body = f"{count}\n"
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    print(f"counter-service listening on {PORT}", flush=True)
    http.server.ThreadingHTTPServer(("0.0.0.0", PORT), Handler).serve_forever()
