#!/usr/bin/env python3
"""A normal client's latency while slowloris connections are held (`make bench`).

usage: scripts/slowloris.py PORT LOADGEN [--conns N] [--seconds S]

Measures, first on a quiet daemon and then while N connections (default 1000) each send
a request head one header line per second and never finish it: the median and p99 of
`GET /health` on a fresh connection each time, and of `tools/call echo` through
`mcpctl-loadgen run` (one session on /mcp/fx). Prints one JSON line. Loopback only;
every socket it opens is closed before it exits, and the loop is bounded by --seconds.
"""
import json
import resource
import socket
import statistics
import subprocess
import sys
import threading
import time


def health_latencies(port, n=200):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        if not data.startswith(b"HTTP/1.1 200"):
            return None, data[:80].decode("latin-1")
        out.append((time.perf_counter() - t) * 1000)
    return out, None


def pct(v, p):
    v = sorted(v)
    return round(v[min(len(v) - 1, int(p * len(v)))], 3)


def call_latency(port, loadgen, seconds):
    r = subprocess.run(
        [loadgen, "run", f"http://127.0.0.1:{port}/mcp/fx", "--sessions", "1", "--duration", str(seconds),
         "--warmup", "5", "--label", "slowloris"],
        capture_output=True, text=True, timeout=seconds + 60)
    if r.returncode != 0:
        return {"error": r.stderr.strip()[:200]}
    j = json.loads(r.stdout)
    return {"p50_ms": j["p50_ms"], "p99_ms": j["p99_ms"], "calls": j["calls"], "errors": j["errors"] + j["init_errors"]}


def measure(port, loadgen, seconds):
    h, err = health_latencies(port)
    health = {"error": err} if h is None else {"p50_ms": pct(h, 0.5), "p99_ms": pct(h, 0.99)}
    return {"health": health, "tools_call": call_latency(port, loadgen, seconds)}


def main():
    args = sys.argv[1:]
    if len(args) < 2:
        sys.exit(__doc__)
    port, loadgen = int(args[0]), args[1]
    conns = int(args[args.index("--conns") + 1]) if "--conns" in args else 1000
    seconds = int(args[args.index("--seconds") + 1]) if "--seconds" in args else 5
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, conns + 256)), hard))

    quiet = measure(port, loadgen, seconds)

    socks, stop = [], threading.Event()
    for _ in range(conns):
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.setblocking(False)
            s.send(b"POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            socks.append(s)
        except OSError:
            break
    opened = len(socks)

    def drip():
        n = 0
        while not stop.wait(1.0) and n < 600:
            n += 1
            for s in socks:
                try:
                    s.send(b"X-Slow: %d\r\n" % n)
                except OSError:
                    pass

    t = threading.Thread(target=drip, daemon=True)
    t.start()
    time.sleep(1)
    loaded = measure(port, loadgen, seconds)
    # How many of the slow connections the daemon still holds open.
    # (Nothing to read yet: still open. An answer (503, 408) or EOF: the daemon let it go.)
    held = 0
    for s in socks:
        try:
            s.recv(1)
        except BlockingIOError:
            held += 1
        except OSError:
            pass
    stop.set()
    t.join()
    for s in socks:
        s.close()
    print(json.dumps({"label": "slowloris", "slow_connections_opened": opened,
                      "slow_connections_still_open": held, "quiet": quiet, "under_slowloris": loaded}))


if __name__ == "__main__":
    main()
