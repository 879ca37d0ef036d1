"""A TLS server on 127.0.0.1 for tests/network.rs (standard library only).

POST /mcp answers MCP over Streamable HTTP with plain JSON: initialize, tools/list (one tool,
`echo`), tools/call; notifications get 202. GET /<name> serves files from --dir (the uv
mirror of the runtime test). Prints the port on stdout once listening, counts the requests
it served into --count (a file), and exits by itself after --lifetime seconds.

usage: tls_server.py --cert server.pem --key server.key [--dir DIR] [--count FILE] [--lifetime S]
"""

import argparse
import http.server
import json
import os
import ssl
import sys
import threading

ap = argparse.ArgumentParser()
ap.add_argument("--cert", required=True)
ap.add_argument("--key", required=True)
ap.add_argument("--dir", default=None)
ap.add_argument("--count", default=None)
ap.add_argument("--lifetime", type=float, default=120.0)
args = ap.parse_args()

lock = threading.Lock()
served = 0


def count():
    global served
    with lock:
        served += 1
        if args.count:
            with open(args.count + ".tmp", "w") as f:
                f.write(str(served))
            os.replace(args.count + ".tmp", args.count)


TOOL = {
    "name": "echo",
    "description": "Echo the text back",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}


def answer(msg):
    method = msg.get("method")
    if method == "initialize":
        return {
            "protocolVersion": msg.get("params", {}).get("protocolVersion", "2025-06-18"),
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "tls-test-server", "version": "1.0"},
        }
    if method == "tools/list":
        return {"tools": [TOOL]}
    if method == "tools/call":
        text = msg.get("params", {}).get("arguments", {}).get("text", "")
        return {"content": [{"type": "text", "text": "echo:" + str(text)}]}
    if method == "ping":
        return {}
    return None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def reply(self, status, body=b"", ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        count()
        n = int(self.headers.get("Content-Length") or 0)
        msg = json.loads(self.rfile.read(n) or b"{}")
        if self.path != "/mcp":
            return self.reply(404)
        if "id" not in msg:
            return self.reply(202)
        result = answer(msg)
        if result is None:
            out = {"jsonrpc": "2.0", "id": msg["id"], "error": {"code": -32601, "message": "no such method"}}
        else:
            out = {"jsonrpc": "2.0", "id": msg["id"], "result": result}
        self.reply(200, json.dumps(out).encode())

    def do_DELETE(self):
        count()
        self.reply(200)

    def do_GET(self):
        count()
        name = os.path.basename(self.path.split("?")[0])
        if not args.dir or not name:
            return self.reply(404)
        path = os.path.join(args.dir, name)
        if not os.path.isfile(path):
            return self.reply(404)
        with open(path, "rb") as f:
            self.reply(200, f.read(), "application/octet-stream")


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(args.cert, args.key)
server.socket = ctx.wrap_socket(server.socket, server_side=True)
threading.Timer(args.lifetime, server.shutdown).start()
print(server.server_address[1], flush=True)
sys.stdout.close()
server.serve_forever()
