#!/usr/bin/env bash
# Soak of the gateway with misbehaving children (`make soak`; `make bench` runs it last):
# 16 sessions call a healthy server for SOAK_SECONDS (default 60) through one daemon while,
# beside it, a child that stops reading its stdin after its handshake (wedged: every call
# times out, the daemon restarts it) and a child that dies at every start (crash loop) are
# called over and over. Prints one JSON line: the healthy server's p50/p99 and errors, and
# the daemon's RSS, threads and open fds before and after; fails when the healthy server
# saw a mismatch or an error, or when a child outlives `stop`.
# Only 127.0.0.1; every process started here is stopped by its pid.
set -euo pipefail

bin="$(cd "${1:?usage: scripts/soak.sh BINDIR}" && pwd)"
seconds="${SOAK_SECONDS:-60}"
sessions="${SOAK_SESSIONS:-16}"
out="${BENCH_OUT:-$bin/bench-results.jsonl}"
m="$bin/mcpctl" fx="$bin/mcpctl-fixture-server" lg="$bin/mcpctl-loadgen"
for f in "$m" "$fx" "$lg"; do
  [ -x "$f" ] || { echo "soak: $f is missing (cargo build --release --bins)" >&2; exit 1; }
done

work="$(mktemp -d "${TMPDIR:-/tmp}/mcpctl-soak.XXXXXX")"
project="$work/project"
mkdir -p "$project/.mcpctl"
cat >"$project/.mcpctl/config.json" <<EOF
{"mcpServers": {
  "fx": {"command": "$fx", "alwaysAllow": ["echo"], "timeout": 10},
  "wedged": {"command": "$fx", "args": ["--no-read-after", "3"],
             "alwaysAllow": ["echo"], "timeout": 2},
  "crashy": {"command": "$fx", "args": ["--crash-on-init"],
             "alwaysAllow": ["echo"], "timeout": 2}
}}
EOF

daemon_pid=""
loops=()
cleanup() {
  for p in "${loops[@]}"; do kill "$p" 2>/dev/null || true; done
  if [ -n "$daemon_pid" ] && kill -0 "$daemon_pid" 2>/dev/null; then
    (cd "$project" && "$m" stop >/dev/null 2>&1) || kill -KILL "$daemon_pid" 2>/dev/null || true
  fi
  [ -n "${BENCH_KEEP:-}" ] && echo "soak: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
(cd "$project" && "$m" start --port "$port" >/dev/null)
daemon_pid="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$project/.mcpctl/daemon.json")"
# Start the healthy child (and let the others begin to misbehave) before the first reading.
(cd "$project" && "$m" call fx echo --text warm >/dev/null)
sleep 1

reading() { # rss_kb threads fds
  printf '%s %s %s' "$(awk '/^VmRSS:/ {print $2}' "/proc/$daemon_pid/status")" \
    "$(ls "/proc/$daemon_pid/task" | wc -l)" "$(ls "/proc/$daemon_pid/fd" | wc -l)"
}
read -r rss0 thr0 fd0 <<<"$(reading)"

# The misbehaving servers, called in bounded loops for as long as the soak lasts.
misbehave() { # server
  local end=$((SECONDS + seconds)) n=0
  while [ "$SECONDS" -lt "$end" ] && [ "$n" -lt 10000 ]; do
    (cd "$project" && timeout 20 "$m" call "$1" echo --text x --timeout 2 >/dev/null 2>&1) || true
    n=$((n + 1))
  done
  echo "$n" >"$work/$1.calls"
}
misbehave wedged &
loops+=($!)
misbehave crashy &
loops+=($!)

result="$("$lg" run "http://127.0.0.1:$port/mcp/fx" --sessions "$sessions" --duration "$seconds" \
  --warmup 5 --pid "$daemon_pid" --label soak)"
for p in "${loops[@]}"; do wait "$p" || true; done
loops=()
sleep 3 # let the last restarts settle
read -r rss1 thr1 fd1 <<<"$(reading)"

(cd "$project" && "$m" list --json-output) >"$work/list.json" || true
restarts="$(python3 -c 'import json,sys
d = json.load(open(sys.argv[1]))
print(json.dumps({s["name"]: s.get("restarts") for s in d["servers"]}))' "$work/list.json" 2>/dev/null || echo null)"
# Every process the daemon runs now (its children and theirs), to check after `stop`.
descendants() {
  local p
  for p in $(pgrep -P "$1" || true); do echo "$p"; descendants "$p"; done
}
kids="$(descendants "$daemon_pid")"
(cd "$project" && "$m" stop >/dev/null)
for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.1; done
left=0
for p in $kids; do
  kill -0 "$p" 2>/dev/null && { left=$((left + 1)); kill -KILL "$p" 2>/dev/null || true; }
done
daemon_pid=""

line="$(python3 - "$result" <<EOF
import json, sys
r = json.loads(sys.argv[1])
print(json.dumps({"label": "soak", "seconds": $seconds, "sessions": $sessions,
  "healthy_calls": r["calls"], "healthy_calls_per_s": r["calls_per_s"],
  "healthy_p50_ms": r["p50_ms"], "healthy_p99_ms": r["p99_ms"],
  "mismatches": r["mismatches"], "errors": r["errors"] + r["init_errors"],
  "wedged_calls": int(open("$work/wedged.calls").read()), "crashy_calls": int(open("$work/crashy.calls").read()),
  "restarts": $restarts, "children_at_stop": $(echo $kids | wc -w),
  "rss_kb_before": $rss0, "rss_kb_after": $rss1, "rss_kb_peak": r["server_rss_kb_peak"],
  "threads_before": $thr0, "threads_after": $thr1, "fds_before": $fd0, "fds_after": $fd1,
  "children_left_after_stop": $left}))
EOF
)"
echo "$line" | tee -a "$out"
python3 - "$line" <<'EOF'
import json, sys
r = json.loads(sys.argv[1])
bad = [k for k in ("mismatches", "errors", "children_left_after_stop") if r[k]]
if bad:
    sys.exit("soak: failed: " + ", ".join(f"{k}={r[k]}" for k in bad))
EOF
