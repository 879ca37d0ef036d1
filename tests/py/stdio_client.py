#!/usr/bin/env python3
"""An MCP client on the official Python SDK's stdio transport (`stdio_client` +
`ClientSession`), for `mcpctl serve --stdio`.

Usage:
    stdio_client.py SPEC

SPEC is JSON: {"command": PATH, "args": [...], "cwd": DIR, "env": {...},
"steps": [STEP, ...]} where a STEP is one of
    ["list-tools"]                 -> the tool names
    ["call", TOOL, {args}]         -> {"content": [...], "isError": bool}, or {"error": {"code", "message"}}
    ["wait-list-changed", SECS]    -> true when notifications/tools/list_changed arrived (waits up to SECS)

The client declares elicitation (answering every question with
{"action": "accept", "content": {"answer": "from-python"}}) and sampling (answering
"sampled by python"), so servers behind the gateway can ask it mid-call.

Prints {"results": [...]} (one per step) on stdout; exit 0, or 1 with the error on stderr.
Run it with the project venv: .deps/venv/bin/python tests/py/stdio_client.py SPEC
"""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import timedelta

import anyio
from mcp import ClientSession, StdioServerParameters, types
from mcp.client.stdio import stdio_client
from mcp.shared.exceptions import McpError


def flatten(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(flatten(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def run(spec: dict) -> list:
    params = StdioServerParameters(
        command=spec["command"], args=spec.get("args", []), env=spec.get("env"), cwd=spec.get("cwd")
    )
    list_changed = anyio.Event()

    async def on_message(msg) -> None:
        if isinstance(msg, types.ServerNotification) and isinstance(msg.root, types.ToolListChangedNotification):
            list_changed.set()

    async def on_elicit(context, p: types.ElicitRequestParams):
        return types.ElicitResult(action="accept", content={"answer": "from-python"})

    async def on_sample(context, p: types.CreateMessageRequestParams):
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text="sampled by python"), model="test"
        )

    results: list = []
    async with stdio_client(params) as (read, write):
        async with ClientSession(
            read,
            write,
            read_timeout_seconds=timedelta(seconds=30),
            message_handler=on_message,
            elicitation_callback=on_elicit,
            sampling_callback=on_sample,
        ) as session:
            await session.initialize()
            for step in spec["steps"]:
                kind = step[0]
                if kind == "list-tools":
                    r = await session.list_tools()
                    results.append([t.name for t in r.tools])
                elif kind == "call":
                    try:
                        r = await session.call_tool(step[1], step[2] if len(step) > 2 else {})
                        results.append(
                            {"content": [c.model_dump(mode="json") for c in r.content], "isError": r.isError}
                        )
                    except McpError as e:
                        results.append({"error": {"code": e.error.code, "message": e.error.message}})
                elif kind == "wait-list-changed":
                    with anyio.move_on_after(float(step[1])):
                        await list_changed.wait()
                    results.append(list_changed.is_set())
                else:
                    raise ValueError(f"unknown step {kind}")
    return results


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    spec = json.loads(sys.argv[1])
    try:
        results = asyncio.run(run(spec))
    except BaseException as e:  # noqa: BLE001 - report anything as one line
        print(f"stdio_client.py: {flatten(e)}", file=sys.stderr)
        return 1
    print(json.dumps({"results": results}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
