#!/usr/bin/env bash
# The official MCP conformance suite against mcpctl, both sides:
#   server: the gateway fronting fixtures/conformance_server.py (a stdio child), at
#           /mcp/<server> (names untouched) and at the aggregated /mcp;
#   client: mcpctl as the client in the initialize, tools_call and sse-retry scenarios.
#
#   scripts/conformance-gateway.sh BINDIR     (BINDIR holds mcpctl; `make test` passes target/release)
#
# With CONFORMANCE_MODERN=1 (the second run of `make test`) it runs instead the alpha suite
# (.deps/npm-conformance, 0.2.0-alpha.12) against the gateway at /mcp/conf fronting
# fixtures/conformance_server_modern.py (Python SDK 2.x, stdio child), once with
# --spec-version 2025-11-25 and once with 2026-07-28 (pending scenarios included),
# each with tests/conformance/expected-failures-gateway-modern-<era>.yml as baseline
# when that file exists.  CONFORMANCE_ERAS="2026-07-28" picks eras.  Then the alpha suite's
# non-auth client scenarios at --spec-version 2026-07-28 with mcpctl as the client
# (tests/conformance/mcpctl-client.sh; CONFORMANCE_CLIENT=0 skips them).
#
# Prints the suite's summaries; exits non-zero on any unexpected failure. Needs `make deps`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "${1:-$root/target/release}" && pwd)
m="$bin/mcpctl"
modern=${CONFORMANCE_MODERN:-0}
py="$root/.deps/venv/bin/python"
fixture="$root/fixtures/conformance_server.py"
if [[ "$modern" == 1 ]]; then
    py="$root/.deps/venv-modern/bin/python"
    fixture="$root/fixtures/conformance_server_modern.py"
    [[ -x "$root/.deps/npm-conformance/node_modules/.bin/conformance" ]] ||
        { echo "conformance-gateway: the alpha suite is missing; run 'make deps'" >&2; exit 2; }
fi
export PATH="$root/.deps/npm/node_modules/.bin:$PATH"
[[ -x "$m" ]] || { echo "conformance-gateway: $m missing; build first" >&2; exit 2; }
[[ -x "$py" ]] && command -v conformance >/dev/null || { echo "conformance-gateway: run 'make deps'" >&2; exit 2; }

# The modern fixture serves both eras: a child per era, so that session clients reach
# what only the session era has (docs/gateway.md, "A child per era").
protocol=""
[[ "$modern" == 1 ]] && protocol=', "protocol": "per-era"'
proj=$(mktemp -d "${TMPDIR:-/tmp}/mcpctl-conformance-gw.XXXXXX")
mkdir -p "$proj/.mcpctl"
cat >"$proj/.mcpctl/config.json" <<JSON
{"mcpServers": {"conf": {"command": "$py", "args": ["$fixture"], "timeout": 20, "alwaysAllow": ["*"]$protocol}}}
JSON
port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
pid=""
cleanup() {
    if [[ -n "$pid" ]]; then
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
    fi
    rm -rf "$proj"
}
trap cleanup EXIT
pid=$(cd "$proj" && "$m" --json-output start --port "$port" | "$py" -c 'import json,sys; print(json.load(sys.stdin)["daemon"]["pid"])')
# Wait for the child to be ready (bounded).
for _ in $(seq 200); do
    (cd "$proj" && "$m" --json-output status) | grep -q '"status":"ready"' && break
    sleep 0.1
done

rc=0
passed=0
failed=0
expected=0
# "Total: N passed, M failed" from a suite run's summary.
tally() {
    local line
    line=$(grep -E '^Total: [0-9]+ passed, [0-9]+ failed' "$1" | tail -n 1)
    [[ -n "$line" ]] || return 0
    set -- $line
    echo "$2 $4"
}
if [[ "$modern" == 1 ]]; then
    log=$(mktemp "${TMPDIR:-/tmp}/mcpctl-conformance-run.XXXXXX")
    for era in ${CONFORMANCE_ERAS:-2025-11-25 2026-07-28}; do
        echo "== server scenarios, alpha suite --spec-version $era: gateway /mcp/conf =="
        baseline=()
        [[ -f "$root/tests/conformance/expected-failures-gateway-modern-$era.yml" ]] &&
            baseline=("$root/tests/conformance/expected-failures-gateway-modern-$era.yml")
        era_rc=0
        CONFORMANCE_PREFIX="$root/.deps/npm-conformance" CONFORMANCE_SUITE=all CONFORMANCE_ARGS="--spec-version $era" \
            "$root/scripts/conformance-server.sh" "http://127.0.0.1:$port/mcp/conf" "${baseline[@]}" | tee "$log" || era_rc=1
        read -r p f <<<"$(tally "$log")"
        passed=$((passed + ${p:-0}))
        # Checks of the baseline's scenarios fail by design: counted apart, not as failures.
        if [[ $era_rc -eq 0 ]]; then expected=$((expected + ${f:-0})); else rc=1; failed=$((failed + ${f:-0})); fi
        echo
    done
    rm -f "$log"
    [[ $rc -eq 0 ]] || { echo "daemon log:"; tail -n 40 "$proj/.mcpctl/logs/daemon.log" || true; }
    if [[ "${CONFORMANCE_CLIENT:-1}" == 1 ]]; then
        echo "== client scenarios, alpha suite --spec-version 2026-07-28: mcpctl =="
        # Every non-auth client scenario of 2026-07-28 (mcpctl has no OAuth: docs/conformance.md).
        for s in tools_call request-metadata http-standard-headers http-custom-headers \
            http-invalid-tool-headers sep-2322-client-request-state json-schema-ref-no-deref \
            json-schema-2020-12-preservation; do
            out=$(mktemp -d "${TMPDIR:-/tmp}/mcpctl-conformance-client.XXXXXX")
            s_rc=0
            (cd "$out" && MCPCTL="$m" NO_COLOR=1 "$root/.deps/npm-conformance/node_modules/.bin/conformance" client \
                --command "$root/tests/conformance/mcpctl-client.sh" --scenario "$s" --spec-version 2026-07-28) \
                </dev/null >"$out/run.log" 2>&1 || s_rc=1
            # "Passed: N/T, M failed, W warnings"
            read -r p f <<<"$(sed -nE 's/^Passed: ([0-9]+)\/[0-9]+, ([0-9]+) failed.*/\1 \2/p' "$out/run.log" | tail -n 1)"
            p=${p:-0} f=${f:-0}
            # A run that fails with no failed check (a warning, the client's exit status) counts once.
            [[ $s_rc -eq 0 || $f -gt 0 ]] || f=1
            passed=$((passed + p)); failed=$((failed + f))
            if [[ $s_rc -eq 0 ]]; then
                echo "client $s: passed ($p checks)"; rm -rf "$out"
            else
                echo "client $s: FAILED (log: $out/run.log)"; tail -n 30 "$out/run.log"; rc=1
            fi
        done
        echo
    fi
    echo "conformance-gateway (modern): exit $rc; $expected checks failed as the baselines expect"
    [[ $rc -eq 0 || $failed -gt 0 ]] || failed=1
    echo "conformance (modern): $passed passed, $failed failed"
    exit $rc
fi
echo "== server scenarios: gateway /mcp/conf =="
log=$(mktemp "${TMPDIR:-/tmp}/mcpctl-conformance-run.XXXXXX")
"$root/scripts/conformance-server.sh" "http://127.0.0.1:$port/mcp/conf" "$root/tests/conformance/expected-failures-server.yml" | tee "$log" || rc=1
read -r p f <<<"$(tally "$log")"
passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
echo
echo "== server scenarios: gateway /mcp (aggregated; names prefixed conf__) =="
"$root/scripts/conformance-server.sh" "http://127.0.0.1:$port/mcp" "$root/tests/conformance/expected-failures-aggregated.yml" | tee "$log" || rc=1
# Here the listed scenarios fail by design; only an unexpected result counts as a failure.
read -r p f <<<"$(tally "$log")"
passed=$((passed + ${p:-0}))
rm -f "$log"
echo
echo "== client scenarios: mcpctl =="
for s in initialize tools_call sse-retry; do
    out=$(mktemp -d "${TMPDIR:-/tmp}/mcpctl-conformance-client.XXXXXX")
    if (cd "$out" && MCPCTL="$m" NO_COLOR=1 conformance client --command "$root/tests/conformance/mcpctl-client.sh" --scenario "$s") </dev/null >"$out/run.log" 2>&1; then
        echo "client $s: passed"; passed=$((passed + 1))
    else
        echo "client $s: FAILED (log: $out/run.log)"; tail -n 30 "$out/run.log"; rc=1; failed=$((failed + 1))
    fi
done
[[ $rc -eq 0 ]] || { echo "daemon log:"; tail -n 40 "$proj/.mcpctl/logs/daemon.log" || true; }
echo "conformance-gateway: exit $rc"
[[ $rc -eq 0 || $failed -gt 0 ]] || failed=1
echo "conformance: $passed passed, $failed failed"
exit $rc
