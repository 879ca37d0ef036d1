#!/usr/bin/env bash
# Run the MCP conformance suite's server scenarios against a Streamable HTTP URL.
#
#   scripts/conformance-server.sh URL [EXPECTED_FAILURES_YML]
#
# URL must be a loopback URL (the dns-rebinding-protection scenario requires
# localhost/127.0.0.1/[::1]), e.g. http://127.0.0.1:PORT/mcp/<server> for the gateway.
# EXPECTED_FAILURES_YML is the suite's baseline file (see tests/conformance/README.md):
# listed scenarios may fail; a listed scenario that passes is an error (stale entry).
#
# Environment:
#   CONFORMANCE_SUITE     active (default), all or pending
#   CONFORMANCE_SCENARIO  run only this scenario
#   CONFORMANCE_OUT       results directory (default: a new temp dir; kept and printed)
#   CONFORMANCE_PREFIX    npm prefix holding the suite (default .deps/npm, suite 0.1.16;
#                         .deps/npm-conformance is the alpha suite with the 2026-07-28 scenarios)
#   CONFORMANCE_ARGS      extra arguments for `conformance server`, split on spaces, e.g.
#                         "--spec-version 2026-07-28" or "--requirements 2026-07-28"
#                         (with --requirements, --suite is not passed: it replaces it)
#
# Prints the suite's summary (and the failing checks on failure); exits with the
# suite's status: non-zero on unexpected failures or stale baseline entries.
# Needs `make deps` (Node 22 and the suite under .deps/npm).
set -euo pipefail

if [[ $# -lt 1 || $# -gt 2 ]]; then
    sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
url=$1
baseline=${2:-}

root=$(cd "$(dirname "$0")/.." && pwd)
prefix=${CONFORMANCE_PREFIX:-$root/.deps/npm}
[[ "$prefix" == /* ]] || prefix="$root/$prefix"
# The suite's bin from $prefix first; Node 22 always comes from .deps/npm.
export PATH="$prefix/node_modules/.bin:$root/.deps/npm/node_modules/.bin:$PATH"
if [[ ! -x "$prefix/node_modules/.bin/conformance" ]] || [[ "$(node --version)" != v22.* ]]; then
    echo "conformance-server: Node 22 or the conformance suite in $prefix is missing; run 'make deps'" >&2
    exit 2
fi
read -r -a extra <<<"${CONFORMANCE_ARGS:-}"

out=${CONFORMANCE_OUT:-$(mktemp -d "${TMPDIR:-/tmp}/mcpctl-conformance.XXXXXX")}
mkdir -p "$out"
args=(server --url "$url" --output-dir "$out")
[[ " ${extra[*]} " == *" --requirements "* || " ${extra[*]} " == *" --requirements="* ]] || args+=(--suite "${CONFORMANCE_SUITE:-active}")
args+=("${extra[@]}")
[[ -n "${CONFORMANCE_SCENARIO:-}" ]] && args+=(--scenario "$CONFORMANCE_SCENARIO")
if [[ -n "$baseline" ]]; then
    [[ -f "$baseline" ]] || { echo "conformance-server: no such file: $baseline" >&2; exit 2; }
    args+=(--expected-failures "$(cd "$(dirname "$baseline")" && pwd)/$(basename "$baseline")")
fi

rc=0
(cd "$out" && NO_COLOR=1 FORCE_COLOR=0 conformance "${args[@]}") </dev/null >"$out/run.log" 2>&1 || rc=$?

# The multi-scenario summary starts at "=== SUMMARY ==="; a single scenario prints "Test Results:".
if grep -q '=== SUMMARY ===' "$out/run.log"; then
    sed -n '/=== SUMMARY ===/,$p' "$out/run.log"
else
    sed -n '/^Test Results:/,$p' "$out/run.log"
fi

if [[ $rc -ne 0 ]]; then
    echo
    echo "Failing checks:"
    for f in "$out"/*/checks.json; do
        [[ -f "$f" ]] || continue
        node -e '
            const checks = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
            const dir = require("path").basename(require("path").dirname(process.argv[1]));
            for (const c of checks) if (c.status === "FAILURE")
                console.log(`  ${dir}: ${c.id}: ${c.errorMessage ?? ""}`);
        ' "$f"
    done
fi
echo "conformance-server: exit $rc; full log and checks.json files in $out"
exit $rc
