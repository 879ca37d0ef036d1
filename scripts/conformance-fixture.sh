#!/usr/bin/env bash
# Validate fixtures/conformance_server.py itself: serve it directly over
# Streamable HTTP on a free loopback port and run scripts/conformance-server.sh
# against http://127.0.0.1:PORT/mcp.
#
#   scripts/conformance-fixture.sh [EXPECTED_FAILURES_YML]
#
# Same environment variables as conformance-server.sh (CONFORMANCE_SUITE, ...).
# Needs `make deps`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.deps/venv/bin/python"
[[ -x "$py" ]] || { echo "conformance-fixture: $py missing; run 'make deps'" >&2; exit 2; }

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp "${TMPDIR:-/tmp}/conformance-fixture.XXXXXX.log")
"$py" "$root/fixtures/conformance_server.py" --http "$port" </dev/null >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || { echo "conformance-fixture: server exited; log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
done

rc=0
"$root/scripts/conformance-server.sh" "http://127.0.0.1:$port/mcp" "$@" || rc=$?
[[ $rc -eq 0 ]] || { echo "conformance-fixture: server log ($log):" >&2; tail -n 50 "$log" >&2; }
exit $rc
