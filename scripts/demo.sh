#!/usr/bin/env bash
# The main job (`make run`): drive the demo project in fixtures/demo with the shell
# client, then through the gateway daemon, then stop it. Needs only what cargo built.
set -euo pipefail
bin="$(cd "${1:-target/release}" && pwd)"
cd "$(dirname "$0")/../fixtures/demo"
m="$bin/mcpctl"
port="${MCPCTL_DEMO_PORT:-17878}"
say() { printf '\n\033[1m$ %s\033[0m\n' "$*"; }
run() { say "mcpctl $*"; "$m" "$@"; }

trap '"$m" stop >/dev/null 2>&1 || true' EXIT
run list
run tools paged
run call demo echo --text "hello from mcpctl"
run call demo add --a 2 --b 40
run call demo types --s 007 --n 7 --b --arr '[1,2]'
run --json-output call demo add --a 1 --b 2
run call demo echo --text "not sent" --dry-run
say "mcpctl call demo fail --message boom   (not allowlisted: refused without --yes)"
"$m" call demo fail --message boom </dev/null || echo "(exit code $?)"
run start --port "$port"
run status
run call demo echo --text "through the daemon: no spawn, no handshake with the child"
say "curl /health"; curl -s "http://127.0.0.1:$port/health" 2>/dev/null || "$m" status --json-output >/dev/null; echo
run stop
