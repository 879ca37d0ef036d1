#!/usr/bin/env bash
# mcpctl as the client in the suite's client scenarios:
#
#   conformance client --command "tests/conformance/mcpctl-client.sh" --scenario tools_call
#
# The suite runs `<command> <server-url>` with MCP_CONFORMANCE_SCENARIO set; each scenario
# maps to one plain mcpctl command against that URL (no config: `--url`).
# MCPCTL is the binary to use (default: target/release/mcpctl).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
m=${MCPCTL:-$root/target/release/mcpctl}
url=${*: -1}
case "${MCP_CONFORMANCE_SCENARIO:-}" in
    initialize) exec "$m" --json-output --url "$url" tools ;;
    tools_call) exec "$m" --json-output --url "$url" call add_numbers --a 5 --b 3 ;;
    sse-retry)  exec "$m" --json-output --url "$url" call test_reconnection ;;
    *) echo "mcpctl-client: scenario '${MCP_CONFORMANCE_SCENARIO:-}' not handled" >&2; exit 2 ;;
esac
