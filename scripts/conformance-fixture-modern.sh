#!/usr/bin/env bash
# Validate fixtures/conformance_server_modern.py (Python SDK 2.x, both protocol eras)
# with the alpha conformance suite (.deps/npm-conformance, 0.2.0-alpha.12): serve it
# directly over Streamable HTTP on a free loopback port and run
# scripts/conformance-server.sh against http://127.0.0.1:PORT/mcp once per era.
#
#   scripts/conformance-fixture-modern.sh [ERA...]
#
# ERA is 2025-11-25 or 2026-07-28 (default: both).  Each era runs the suite's
# scenarios for that spec version, pending ones included (--suite all
# --spec-version ERA), with tests/conformance/expected-failures-modern-ERA.yml as
# the baseline when that file exists.  CONFORMANCE_SCENARIO and CONFORMANCE_OUT
# are passed through (CONFORMANCE_OUT gets one subdirectory per era).
# Prints each era's summary and "conformance-fixture-modern: N passed, N failed"
# (eras); exits non-zero if any era had unexpected failures.  Needs `make deps`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.deps/venv-modern/bin/python"
prefix="$root/.deps/npm-conformance"
[[ -x "$py" && -x "$prefix/node_modules/.bin/conformance" ]] || {
    echo "conformance-fixture-modern: $py or the suite in $prefix missing; run 'make deps'" >&2; exit 2; }
eras=("$@")
[[ ${#eras[@]} -gt 0 ]] || eras=(2025-11-25 2026-07-28)

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp "${TMPDIR:-/tmp}/conformance-fixture-modern.XXXXXX.log")
"$py" "$root/fixtures/conformance_server_modern.py" --http "$port" </dev/null >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT

for _ in $(seq 150); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
    kill -0 "$pid" 2>/dev/null || { echo "conformance-fixture-modern: server exited; log:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
done

passed=0 failed=0
for era in "${eras[@]}"; do
    case "$era" in 2025-11-25|2026-07-28) ;; *) echo "conformance-fixture-modern: unknown era $era" >&2; exit 2;; esac
    echo "== alpha suite, --spec-version $era (pending scenarios included) =="
    baseline=()
    [[ -f "$root/tests/conformance/expected-failures-modern-$era.yml" ]] &&
        baseline=("$root/tests/conformance/expected-failures-modern-$era.yml")
    rc=0
    CONFORMANCE_PREFIX="$prefix" CONFORMANCE_SUITE=all CONFORMANCE_ARGS="--spec-version $era" \
        CONFORMANCE_OUT="${CONFORMANCE_OUT:+$CONFORMANCE_OUT/$era}" \
        "$root/scripts/conformance-server.sh" "http://127.0.0.1:$port/mcp" "${baseline[@]}" || rc=$?
    if [[ $rc -eq 0 ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
    echo
done
[[ $failed -eq 0 ]] || { echo "conformance-fixture-modern: server log ($log):" >&2; tail -n 50 "$log" >&2; }
echo "conformance-fixture-modern: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
