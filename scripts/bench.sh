#!/usr/bin/env bash
# Benchmarks, side by side in one run (`make bench`; see docs/benchmarks.md):
#   1. cold `mcpctl --no-daemon call` vs the floor (a minimal spawn + handshake + call) vs
#      `mcp-inspector --cli`, interleaved run by run;
#   2. the gateways: mcpctl, supergateway and mcp-proxy fronting the fixture server,
#      `tools/call echo` at 1, 16 and 64 sessions: throughput, p50/p99, the server
#      process's own CPU per call, RSS idle and peak, mismatches; mcpctl twice: with
#      2025-11-25 session clients and with stateless 2026-07-28 clients ("mcpctl-2026");
#   3. warm `mcpctl call` through the running daemon;
#   4. scale-out (docs/scale-out.md): `tools/call echo` at 16 sessions against one daemon
#      directly, through nginx to that one daemon, and through nginx to three daemons (the
#      nginx config of docs/scale-out.md, ports replaced; skipped when nginx is missing).
# Usage: scripts/bench.sh BINDIR   (BINDIR holds mcpctl, mcpctl-fixture-server, mcpctl-loadgen)
# Knobs: BENCH_DURATION (s per load configuration, default 3), BENCH_RUNS (cold/warm runs,
# default 30), BENCH_INSPECTOR_RUNS (default 7), BENCH_SESSIONS (default "1 16 64"),
# BENCH_OUT (raw JSON lines; default BINDIR/bench-results.jsonl), BENCH_STATIC (the static
# musl mcpctl that `make static` builds, measured as a fourth gateway "mcpctl-musl" when it
# exists; default target/x86_64-unknown-linux-musl/release/mcpctl), BENCH_SCALE_SESSIONS
# (sessions of part 4, default 16), BENCH_ONLY=scale-out (only part 4: needs no peers).
# Only 127.0.0.1; every process started here is stopped by its pid.
set -euo pipefail

bin="$(cd "${1:?usage: scripts/bench.sh BINDIR}" && pwd)"
root="$(cd "$(dirname "$0")/.." && pwd)"
duration="${BENCH_DURATION:-3}"
runs="${BENCH_RUNS:-30}"
inspector_runs="${BENCH_INSPECTOR_RUNS:-7}"
sessions_list="${BENCH_SESSIONS:-1 16 64}"
out="${BENCH_OUT:-$bin/bench-results.jsonl}"
only="${BENCH_ONLY:-}"
scale_sessions="${BENCH_SCALE_SESSIONS:-16}"
m="$bin/mcpctl" fx="$bin/mcpctl-fixture-server" lg="$bin/mcpctl-loadgen"
export PATH="$root/.deps/npm/node_modules/.bin:$PATH"
sgw="$(command -v supergateway || true)"
mproxy="$root/.deps/venv/bin/mcp-proxy"
inspector="$(command -v mcp-inspector || true)"
for f in "$m" "$fx" "$lg"; do
  [ -x "$f" ] || { echo "bench: $f is missing (cargo build --release --bins)" >&2; exit 1; }
done
if [ "$only" != scale-out ]; then
  [ -n "$sgw" ] && [ -x "$mproxy" ] && [ -n "$inspector" ] ||
    { echo "bench: supergateway, mcp-proxy or mcp-inspector missing (make bench-deps)" >&2; exit 1; }
fi
nginx="$(command -v nginx || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; } || true)"

work="$(mktemp -d "${TMPDIR:-/tmp}/mcpctl-bench.XXXXXX")"
project="$work/project"
mkdir -p "$project/.mcpctl" "$work/home"
printf '{"mcpServers": {"fx": {"command": "%s", "alwaysAllow": ["echo"]}}}\n' "$fx" \
  >"$project/.mcpctl/config.json"
: >"$out"

static="${BENCH_STATIC:-$root/target/x86_64-unknown-linux-musl/release/mcpctl}"
[ -x "$static" ] || static=""
project_s="$work/project-musl"
mkdir -p "$project_s/.mcpctl"
cp "$project/.mcpctl/config.json" "$project_s/.mcpctl/config.json"

started_pids=()
daemon_pid=""
daemon_pid_s=""
cleanup() {
  if [ -n "$daemon_pid" ]; then
    (cd "$project" && "$m" stop >/dev/null 2>&1) || true
    kill -0 "$daemon_pid" 2>/dev/null && kill "$daemon_pid" 2>/dev/null || true
  fi
  if [ -n "$daemon_pid_s" ]; then
    (cd "$project_s" && "$static" stop >/dev/null 2>&1) || true
    kill -0 "$daemon_pid_s" 2>/dev/null && kill "$daemon_pid_s" 2>/dev/null || true
  fi
  for p in "${started_pids[@]}"; do
    kill "$p" 2>/dev/null || true
  done
  for p in "${started_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  [ -n "${BENCH_KEEP:-}" ] && echo "bench: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_port() { # port, pid
  for _ in $(seq 300); do
    kill -0 "$2" 2>/dev/null || { echo "bench: pid $2 exited before listening on $1" >&2; return 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "bench: nothing listens on $1" >&2
  return 1
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
note() { printf '%s\n' "$*" >&2; }

note "bench: $(nproc) cores, load average $(cut -d' ' -f1-3 /proc/loadavg); results in $out"

# --- 4. scale-out through nginx (first, on a quiet machine) ---------------------------
# Three daemons (node ids a, b, c) of one config, each in a folder of its own; nginx with
# the config of docs/scale-out.md: once in front of daemon a alone (every upstream line
# pointing at it), once in front of all three. Each nginx: its own prefix, port and pid.
start_nginx() { # dir, port, port_a, port_b, port_c
  mkdir -p "$1/tmp"
  awk '/^```nginx$/ {f = 1; next} f && /^```/ {exit} f' "$root/docs/scale-out.md" |
    sed -e "s/127\.0\.0\.1:7801/127.0.0.1:$3/; s/127\.0\.0\.1:7802/127.0.0.1:$4/" \
        -e "s/127\.0\.0\.1:7803/127.0.0.1:$5/; s/listen 127\.0\.0\.1:8080;/listen 127.0.0.1:$2;/" >"$1/mcpctl.conf"
  cat >"$1/nginx.conf" <<EOF
worker_processes auto;
error_log $1/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $1/tmp/body;
  proxy_temp_path $1/tmp/proxy;
  fastcgi_temp_path $1/tmp/fastcgi;
  uwsgi_temp_path $1/tmp/uwsgi;
  scgi_temp_path $1/tmp/scgi;
  include $1/mcpctl.conf;
}
EOF
  "$nginx" -e "$1/error.log" -p "$1/" -c "$1/nginx.conf" -g "daemon off; pid $1/nginx.pid;" \
    </dev/null >/dev/null 2>&1 &
  started_pids+=("$!")
  wait_port "$2" "$!"
}
if [ -z "$nginx" ]; then
  note "bench: nginx is missing (apt-get install nginx-light): no scale-out figures"
else
  nodes=()
  for node in a b c; do
    mkdir -p "$work/node-$node"
    p="$(free_port)"
    "$m" --config "$project/.mcpctl/config.json" --project-root "$work/node-$node" start --port "$p" \
      --node-id "$node" >/dev/null
    pid="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$work/node-$node/.mcpctl/daemon.json")"
    started_pids+=("$pid")
    wait_port "$p" "$pid"
    nodes+=("$p")
  done
  p_n1="$(free_port)" p_n3="$(free_port)"
  start_nginx "$work/nginx-1" "$p_n1" "${nodes[0]}" "${nodes[0]}" "${nodes[0]}"
  start_nginx "$work/nginx-3" "$p_n3" "${nodes[0]}" "${nodes[1]}" "${nodes[2]}"
  note "bench: nginx $("$nginx" -v 2>&1 | sed 's/.*nginx\///'), daemons on ${nodes[*]}"
  sleep 1
  for case in "direct-1:${nodes[0]}" "nginx-1:$p_n1" "nginx-3:$p_n3"; do
    note "bench: scale-out ${case%%:*}, $scale_sessions sessions, ${duration}s"
    timeout $((duration + 120)) "$lg" run "http://127.0.0.1:${case#*:}/mcp/fx" --sessions "$scale_sessions" \
      --duration "$duration" --warmup 20 --label "scale-${case%%:*}" | tee -a "$out" >&2
  done
fi
scale_table() {
  python3 - "$out" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("\n### Scale-out through nginx (docs/scale-out.md)\n")
print("| sessions | path | calls/s | p50 ms | p99 ms | sessions per daemon | calls | mismatches | errors |")
print("| ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: |")
names = {"scale-direct-1": "one daemon, direct", "scale-nginx-1": "nginx → one daemon", "scale-nginx-3": "nginx → three daemons"}
for r in rows:
    if r.get("label") in names:
        spread = ", ".join(f"{k}: {v}" for k, v in r["session_nodes"].items())
        print(f"| {r['sessions']} | {names[r['label']]} | {r['calls_per_s']:.0f} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} "
              f"| {spread} | {r['calls']} | {r['mismatches']} | {r['errors']} |")
PY
}
if [ "$only" = scale-out ]; then
  scale_table
  exit 0
fi

# --- 1. cold calls, interleaved -----------------------------------------------------
note "bench: cold calls ($runs runs each, inspector $inspector_runs)"
(cd "$project" && "$lg" time --warmup 2 -- \
  floor "$runs" floor "$lg" floor "$fx" :: \
  floor_list "$runs" floor "$lg" floor --list "$fx" :: \
  mcpctl_cold "$runs" hi "$m" --no-daemon call fx echo --text hi :: \
  inspector "$inspector_runs" '"hi"' env HOME="$work/home" "$inspector" --cli "$fx" \
    --method tools/call --tool-name echo --tool-arg text=hi) | tee -a "$out" >&2

# --- 2. gateways ----------------------------------------------------------------------
p_m="$(free_port)"
(cd "$project" && "$m" start --port "$p_m" >/dev/null)
daemon_pid="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$project/.mcpctl/daemon.json")"
wait_port "$p_m" "$daemon_pid"
sleep 1
idle_m="$(rss_kb "$daemon_pid")"
gateways="mcpctl mcpctl-2026 supergateway mcp-proxy"
idle_s_m=null
if [ -n "$static" ]; then
  p_sm="$(free_port)"
  (cd "$project_s" && "$static" start --port "$p_sm" >/dev/null)
  daemon_pid_s="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$project_s/.mcpctl/daemon.json")"
  wait_port "$p_sm" "$daemon_pid_s"
  sleep 1
  idle_s_m="$(rss_kb "$daemon_pid_s")"
  gateways="mcpctl mcpctl-2026 mcpctl-musl supergateway mcp-proxy"
  note "bench: static musl mcpctl $static, daemon pid $daemon_pid_s"
fi

p_s="$(free_port)"
"$sgw" --stdio "$fx" --outputTransport streamableHttp --stateful --port "$p_s" --logLevel none \
  >"$work/supergateway.log" 2>&1 &
pid_s=$!
started_pids+=("$pid_s")
p_p="$(free_port)"
"$mproxy" --host 127.0.0.1 --port "$p_p" --log-level WARNING -- "$fx" >"$work/mcp-proxy.log" 2>&1 &
pid_p=$!
started_pids+=("$pid_p")
wait_port "$p_s" "$pid_s"
wait_port "$p_p" "$pid_p"
sleep 1
idle_s="$(rss_kb "$pid_s")"
idle_p="$(rss_kb "$pid_p")"
# Measure the server process itself, not a wrapper: its executable must be node / python.
exe_s="$(basename "$(readlink "/proc/$pid_s/exe")")"
exe_p="$(basename "$(readlink "/proc/$pid_p/exe")")"
note "bench: mcpctl daemon pid $daemon_pid, supergateway pid $pid_s ($exe_s), mcp-proxy pid $pid_p ($exe_p)"
case "$exe_s" in node*) ;; *) note "bench: supergateway pid $pid_s is $exe_s, not node"; exit 1;; esac
case "$exe_p" in python*) ;; *) note "bench: mcp-proxy pid $pid_p is $exe_p, not python"; exit 1;; esac
printf '{"name":"idle_rss_kb","mcpctl":%s,"mcpctl-musl":%s,"supergateway":%s,"mcp-proxy":%s}\n' \
  "$idle_m" "$idle_s_m" "$idle_s" "$idle_p" | tee -a "$out" >&2

# Warm shell calls through the daemon (before the load, on a quiet daemon).
note "bench: warm calls through the daemon ($runs runs)"
warm_static=()
[ -n "$static" ] && warm_static=(:: mcpctl_warm_musl "$runs" hi "$static" call fx echo --text hi)
(cd "$project" && "$lg" time --warmup 2 -- mcpctl_warm "$runs" hi "$m" call fx echo --text hi "${warm_static[@]}") |
  tee -a "$out" >&2

# The machine's floor for one session, with no gateway at all.
note "bench: round trips without a gateway (stdio, loopback TCP, a bare relay)"
"$lg" rtt "$fx" | tee -a "$out" >&2

for n in $sessions_list; do
  for gw in $gateways; do
    proto=()
    case "$gw" in
      mcpctl) url="http://127.0.0.1:$p_m/mcp/fx" pid="$daemon_pid" ;;
      mcpctl-2026) url="http://127.0.0.1:$p_m/mcp/fx" pid="$daemon_pid" proto=(--protocol 2026-07-28) ;;
      mcpctl-musl) url="http://127.0.0.1:$p_sm/mcp/fx" pid="$daemon_pid_s" ;;
      supergateway) url="http://127.0.0.1:$p_s/mcp" pid="$pid_s" ;;
      mcp-proxy) url="http://127.0.0.1:$p_p/mcp" pid="$pid_p" ;;
    esac
    note "bench: $gw, $n sessions, ${duration}s"
    timeout $((duration + 120)) "$lg" run "$url" --sessions "$n" --duration "$duration" --warmup 20 \
      --pid "$pid" --label "$gw" "${proto[@]}" | tee -a "$out" >&2
  done
done

# --- 3. a normal client under a slowloris of 1,000 connections (mcpctl only) ----------
note "bench: /health and tools/call with ${BENCH_SLOW_CONNS:-1000} slowloris connections held"
python3 "$root/scripts/slowloris.py" "$p_m" "$lg" --conns "${BENCH_SLOW_CONNS:-1000}" --seconds "$duration" |
  tee -a "$out" >&2

# --- the table --------------------------------------------------------------------------
python3 - "$out" "$(nproc)" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
cold = {r["name"]: r for r in rows if "median_ms" in r}
idle = next(r for r in rows if r.get("name") == "idle_rss_kb")
loads = [r for r in rows if "calls_per_s" in r]
gws = ["mcpctl", "mcpctl-2026", "mcpctl-musl", "supergateway", "mcp-proxy"]
peers_of = ["supergateway", "mcp-proxy"]

def f(x, d=2):
    return "—" if x is None else f"{x:.{d}f}"

print(f"\n### Cold and warm shell calls ({sys.argv[2]} cores; medians of interleaved runs)\n")
print("| what | runs | median ms | p10–p90 ms | vs floor | failures |")
print("| --- | ---: | ---: | ---: | ---: | ---: |")
floor = cold["floor"]["median_ms"]
labels = {
    "floor": "floor: spawn fixture + initialize + initialized + tools/call + exit",
    "floor_list": "floor + tools/list (what `mcpctl call` asks for)",
    "mcpctl_cold": "`mcpctl --no-daemon call fx echo --text hi`",
    "inspector": "`mcp-inspector --cli` same call",
    "mcpctl_warm": "`mcpctl call fx echo --text hi` through the daemon",
    "mcpctl_warm_musl": "the same, static musl `mcpctl` (`make static`)",
}
for k in ["floor", "floor_list", "mcpctl_cold", "inspector", "mcpctl_warm", "mcpctl_warm_musl"]:
    r = cold.get(k)
    if r:
        print(f"| {labels[k]} | {r['runs']} | {f(r['median_ms'])} | {f(r['p10_ms'])}–{f(r['p90_ms'])} "
              f"| {r['median_ms'] / floor:.2f}x | {r['failures']} |")

print("\n### Gateway: `tools/call echo` against one fixture command\n")
print("| sessions | gateway | calls/s | p50 ms | p99 ms | server CPU µs/call | peak RSS MB | calls | mismatches | errors |")
print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
by = {(r["label"], r["sessions"]): r for r in loads}
for n in sorted({r["sessions"] for r in loads}):
    for g in gws:
        r = by.get((g, n))
        if not r:
            continue
        print(f"| {n} | {g} | {r['calls_per_s']:.0f} | {f(r['p50_ms'], 3)} | {f(r['p99_ms'], 3)} "
              f"| {f(r['server_cpu_us_per_call'], 1)} | {f((r['server_rss_kb_peak'] or 0) / 1024, 1)} "
              f"| {r['calls']} | {r['mismatches']} | {r['errors']} |")

print("\n### mcpctl against the best peer\n")
print("| sessions | build | throughput vs best peer | CPU/call vs best peer (lower is better) | p50 ms |")
print("| ---: | --- | ---: | ---: | ---: |")
for n in sorted({r["sessions"] for r in loads}):
    peers = [by[(g, n)] for g in peers_of if (g, n) in by]
    for build in ["mcpctl", "mcpctl-musl"]:
        me = by.get((build, n))
        if not me or not peers:
            continue
        best_tp = max(p["calls_per_s"] for p in peers)
        cpus = [p["server_cpu_us_per_call"] for p in peers if p["server_cpu_us_per_call"]]
        cpu_ratio = (me["server_cpu_us_per_call"] / min(cpus)) if cpus and me["server_cpu_us_per_call"] else None
        label = "glibc (cargo build --release)" if build == "mcpctl" else "static musl (make static)"
        print(f"| {n} | {label} | {me['calls_per_s'] / best_tp:.2f}x | {f(cpu_ratio, 3)} | {f(me['p50_ms'], 3)} |")

rtt = next((r for r in rows if r.get("name") == "rtt"), None)
if rtt:
    print("\n### The floor for one session on this machine (no gateway at all)\n")
    print("| round trip (median of 3000, sequential) | µs |")
    print("| --- | ---: |")
    print(f"| `tools/call echo` over the fixture's stdio pipes | {rtt['stdio_p50_us']:.0f} |")
    print(f"| the same bytes over loopback TCP to an echoing thread | {rtt['tcp_p50_us']:.0f} |")
    print(f"| bare relay: TCP client → thread → fixture's stdin; a second thread reads its stdout → TCP "
          f"(a gateway's shape, no HTTP, no JSON) | {rtt['relay_two_threads_p50_us']:.0f} |")
    print(f"| bare relay, one thread writing the request and reading the answer | {rtt['relay_one_thread_p50_us']:.0f} |")
    me1 = by.get(("mcpctl", 1))
    if me1:
        print(f"| **mcpctl gateway, 1 session (HTTP, sessions, JSON-RPC, logging)** | **{me1['p50_ms'] * 1000:.0f}** |")

print("\n### Memory (VmRSS of the gateway process itself, children excluded)\n")
print("| gateway | idle MB | peak MB under 64 sessions |")
print("| --- | ---: | ---: |")
for g in gws:
    if idle.get(g) is None:
        continue
    peak = by.get((g, 64), {}).get("server_rss_kb_peak")
    print(f"| {g} | {idle[g] / 1024:.1f} | {f(peak / 1024 if peak else None, 1)} |")
slow = next((r for r in rows if r.get("label") == "slowloris"), None)
if slow:
    print(f"\n### A normal client while {slow['slow_connections_opened']} slowloris connections are held\n")
    print("| request (fresh connection for /health) | quiet p50 / p99 ms | under slowloris p50 / p99 ms |")
    print("| --- | ---: | ---: |")
    for k, name in (("health", "`GET /health`"), ("tools_call", "`tools/call echo`, one session")):
        q, u = slow["quiet"][k], slow["under_slowloris"][k]
        fmt = lambda d: f"{d['p50_ms']} / {d['p99_ms']}" if "p50_ms" in d else d.get("error", "?")
        print(f"| {name} | {fmt(q)} | {fmt(u)} |")
    print(f"\nslow connections the daemon still held at the end: {slow['slow_connections_still_open']}")
bad = sum(r["mismatches"] for r in loads)
errs = sum(r["errors"] for r in loads)
print(f"\nmismatches in all load runs: {bad}; errors: {errs}")
for r in loads:
    if r["errors"]:
        print(f"- {r['label']} @ {r['sessions']}: {r['errors']} errors ({r['init_errors']} sessions failed to "
              f"initialize; slowest initialize {r['init_max_ms']:.0f} ms): {r['first_error']}")
PY
[ -z "$nginx" ] || scale_table
