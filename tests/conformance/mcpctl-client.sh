#!/usr/bin/env bash
# mcpctl as the client in the suite's client scenarios:
#
#   conformance client --command "tests/conformance/mcpctl-client.sh" --scenario tools_call
#
# The suite runs `<command> <server-url>` with MCP_CONFORMANCE_SCENARIO set (and, for some
# scenarios, MCP_CONFORMANCE_CONTEXT: JSON); each scenario maps to the plain mcpctl
# command(s) a user would run against that URL (no config: `--url`).
# MCPCTL is the binary to use (default: target/release/mcpctl).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
m=${MCPCTL:-$root/target/release/mcpctl}
url=${*: -1}
mc() { "$m" --json-output --url "$url" "$@"; }
case "${MCP_CONFORMANCE_SCENARIO:-}" in
    initialize) exec "$m" --json-output --url "$url" tools ;;
    tools_call) exec "$m" --json-output --url "$url" call add_numbers --a 5 --b 3 ;;
    sse-retry)  exec "$m" --json-output --url "$url" call test_reconnection ;;
    # 2026-07-28 (alpha suite, --spec-version 2026-07-28)
    request-metadata) mc tools ;;
    http-standard-headers)
        mc tools
        mc call test_headers
        mc call my-hyphenated-tool
        mc resources
        mc read 'file:///path/to/file%20name.txt'
        mc prompts
        mc prompt test_prompt
        ;;
    http-custom-headers)
        # The calls (tool, arguments) come in the context. A `null` argument is one the user
        # does not give (mcpctl refuses null for a parameter whose type does not allow it).
        node -e '
            for (const t of JSON.parse(process.env.MCP_CONFORMANCE_CONTEXT).toolCalls) {
                const args = Object.fromEntries(Object.entries(t.arguments).filter(([, v]) => v !== null));
                console.log(t.name + "\t" + JSON.stringify(args));
            }' | while IFS=$'\t' read -r tool args; do
            mc call "$tool" --json "$args" </dev/null
        done
        ;;
    http-invalid-tool-headers)
        mc tools
        mc call valid_tool --region us-west1
        ;;
    sep-2322-client-request-state)
        # These two ask to confirm (elicitation), which mcpctl does on a terminal only: the
        # user's terminal is `script`'s pty, and the user types `y` (answer?) and `y` (confirmed).
        command -v script >/dev/null || { echo "mcpctl-client: needs script(1) (util-linux) for a terminal" >&2; exit 2; }
        for t in test_mrtr_echo_state test_mrtr_no_state; do
            printf 'y\ny\n' | SHELL=$BASH script -qefc "$(printf '%q ' "$m" --json-output --url "$url" call "$t")" /dev/null
        done
        mc call test_mrtr_unrelated
        mc call test_mrtr_no_result_type
        ;;
    json-schema-ref-no-deref) mc tools ;;
    json-schema-2020-12-preservation)
        # Hand the schema `tools` printed back to the echo tool, as is.
        schema=$(mc tools | node -e '
            const j = JSON.parse(require("fs").readFileSync(0, "utf8"));
            console.log(JSON.stringify(j.tools.find((t) => t.name === "json_schema_2020_12_tool").inputSchema));')
        mc call json_schema_echo --json "{\"schema\": $schema}"
        ;;
    *) echo "mcpctl-client: scenario '${MCP_CONFORMANCE_SCENARIO:-}' not handled" >&2; exit 2 ;;
esac
