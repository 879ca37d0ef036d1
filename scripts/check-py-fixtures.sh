#!/usr/bin/env bash
# Self-test of fixtures/py_server.py and tests/py/sdk_client.py: serve the
# fixture over Streamable HTTP on a free loopback port and check the client's
# output for each tool. Needs `make deps`. Prints "N passed, N failed".
set -uo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
py="$root/.deps/venv/bin/python"
[[ -x "$py" ]] || { echo "check-py-fixtures: $py missing; run 'make deps'" >&2; exit 2; }

port=$("$py" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
log=$(mktemp "${TMPDIR:-/tmp}/py-fixture.XXXXXX.log")
"$py" "$root/fixtures/py_server.py" --http "$port" </dev/null >"$log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    sleep 0.1
done

url="http://127.0.0.1:$port/mcp"
passed=0 failed=0
expect() {  # expect NAME EXPECTED_STDOUT [EXPECTED_STATUS] -- CLIENT ARGS...
    local name=$1 want=$2 want_rc=$3; shift 4
    local got rc
    got=$("$py" "$root/tests/py/sdk_client.py" "$url" "$@" 2>/dev/null); rc=$?
    if [[ "$got" == "$want" && $rc -eq $want_rc ]]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        printf 'FAIL %s\n  want (rc %s): %s\n  got  (rc %s): %s\n' "$name" "$want_rc" "$want" "$rc" "$got"
    fi
}
t='"type": "text", "text"'
expect list-tools '["echo_string", "add", "divide", "tags", "log_then_echo"]' 0 -- list-tools
expect echo-007 "{\"content\": [{$t: \"str:007\"}], \"isError\": false, \"structuredContent\": {\"result\": \"str:007\"}}" 0 -- call echo_string '{"value":"007"}'
expect echo-true "{\"content\": [{$t: \"str:true\"}], \"isError\": false, \"structuredContent\": {\"result\": \"str:true\"}}" 0 -- call echo_string '{"value":"true"}'
expect add "{\"content\": [{$t: \"5\"}], \"isError\": false, \"structuredContent\": {\"result\": \"5\"}}" 0 -- --token secret call add '{"a":2,"b":3}'
expect divide "{\"content\": [{$t: \"0.25\"}], \"isError\": false, \"structuredContent\": {\"result\": \"0.25\"}}" 0 -- call divide '{"a":1,"b":4}'
expect divide-by-zero "{\"content\": [{$t: \"Error executing tool divide: division by zero\"}], \"isError\": true, \"structuredContent\": null}" 0 -- call divide '{"a":1,"b":0}'
expect tags "{\"content\": [{$t: \"{\\\"items\\\":[\\\"x\\\",\\\"007\\\"],\\\"flag\\\":true}\"}], \"isError\": false, \"structuredContent\": {\"result\": \"{\\\"items\\\":[\\\"x\\\",\\\"007\\\"],\\\"flag\\\":true}\"}}" 0 -- call tags '{"items":["x","007"],"flag":true}'
expect log "{\"content\": [{$t: \"logged:hi\"}], \"isError\": false, \"structuredContent\": {\"result\": \"logged:hi\"}}" 0 -- call log_then_echo '{"message":"hi"}'
expect bad-args '' 2 -- call add '[1]'

# the log notification arrives before the result (printed on stderr with --logs)
if "$py" "$root/tests/py/sdk_client.py" "$url" --logs call log_then_echo '{"message":"hi"}' 2>&1 >/dev/null \
        | grep -qx '{"level": "info", "logger": "py_server", "data": "hi"}'; then
    passed=$((passed + 1))
else
    failed=$((failed + 1)); echo "FAIL log-notification"
fi

echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
