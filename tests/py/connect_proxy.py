"""An HTTP CONNECT proxy on 127.0.0.1 for tests/network.rs (standard library only).

Tunnels only to 127.0.0.1: the target's host name is not resolved, so a name that exists
nowhere (`mcp.test`) reaches the local server only through this proxy. With --auth
USER:PASS a tunnel needs that Basic Proxy-Authorization (else 407). Counts the tunnels it
opened into --count (a file), prints its port on stdout, and exits after --lifetime seconds.

usage: connect_proxy.py --count FILE [--auth USER:PASS] [--lifetime S]
"""

import argparse
import base64
import os
import socket
import sys
import threading

ap = argparse.ArgumentParser()
ap.add_argument("--count", required=True)
ap.add_argument("--auth", default=None)
ap.add_argument("--lifetime", type=float, default=120.0)
args = ap.parse_args()

lock = threading.Lock()
tunnels = 0


def pipe(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def handle(client):
    global tunnels
    client.settimeout(30)
    head = b""
    while b"\r\n\r\n" not in head and len(head) < 65536:
        chunk = client.recv(4096)
        if not chunk:
            client.close()
            return
        head += chunk
    lines = head.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    method, target = lines[0].split(" ")[:2]
    headers = {k.strip().lower(): v.strip() for k, v in (l.split(":", 1) for l in lines[1:] if ":" in l)}
    if method != "CONNECT":
        client.sendall(b"HTTP/1.1 405 Method Not Allowed\r\nContent-Length: 0\r\n\r\n")
        return client.close()
    if args.auth:
        want = "Basic " + base64.b64encode(args.auth.encode()).decode()
        if headers.get("proxy-authorization") != want:
            client.sendall(b"HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 0\r\n\r\n")
            return client.close()
    port = int(target.rsplit(":", 1)[1])
    try:
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
    except OSError:
        client.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n")
        return client.close()
    with lock:
        tunnels += 1
        with open(args.count + ".tmp", "w") as f:
            f.write(str(tunnels))
        os.replace(args.count + ".tmp", args.count)
    client.sendall(b"HTTP/1.1 200 Connection Established\r\n\r\n")
    client.settimeout(None)
    upstream.settimeout(None)
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()


listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
listener.bind(("127.0.0.1", 0))
listener.listen(16)
with open(args.count, "w") as f:
    f.write("0")
print(listener.getsockname()[1], flush=True)
sys.stdout.close()
threading.Timer(args.lifetime, lambda: os._exit(0)).start()
while True:
    conn, _ = listener.accept()
    threading.Thread(target=handle, args=(conn,), daemon=True).start()
