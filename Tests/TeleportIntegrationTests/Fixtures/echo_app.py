# An HTTP app for the application access tests: answers every request with JSON naming the
# method, path, the port its client connected from (`peer`: one connection, one port) and the
# headers it received (in order, duplicates kept); /redirect answers 302 to
# its own internal address; POST counts the body's bytes without keeping them.
import http.server
import json
import sys

PORT = int(sys.argv[1])


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, code, body, extra=()):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def do_GET(self):
        if self.path.startswith("/redirect"):
            return self.reply(302, {}, [("Location", "http://127.0.0.1:%d/landing?x=1" % PORT)])
        self.reply(200, {"method": self.command, "path": self.path, "peer": self.client_address[1],
                         "headers": [[k, v] for k, v in self.headers.items()]})

    def do_POST(self):
        remaining = int(self.headers.get("Content-Length", "0"))
        total = 0
        while remaining > 0:
            chunk = self.rfile.read(min(65536, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            total += len(chunk)
        self.reply(200, {"method": "POST", "received": total})


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
