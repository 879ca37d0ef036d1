#!/usr/bin/env bash
# Reference client for the suite's client scenarios, built on the Python SDK
# (tests/py/sdk_client.py), to compare mcpctl's client wrapper against:
#
#   conformance client --command "tests/conformance/py-sdk-client.sh" --scenario initialize
#
# The suite runs `<command> <server-url>` with MCP_CONFORMANCE_SCENARIO set.
# Passes initialize, tools_call and sse-retry with suite 0.1.16 / mcp 1.30.0.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
url=${*: -1}
client=("$root/.deps/venv/bin/python" "$root/tests/py/sdk_client.py" "$url")
case "${MCP_CONFORMANCE_SCENARIO:-}" in
    initialize) exec "${client[@]}" list-tools ;;
    tools_call) exec "${client[@]}" call add_numbers '{"a":5,"b":3}' ;;
    sse-retry)  exec "${client[@]}" call test_reconnection '{}' ;;
    *) echo "py-sdk-client: scenario '${MCP_CONFORMANCE_SCENARIO:-}' not handled" >&2; exit 2 ;;
esac
