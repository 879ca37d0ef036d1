#!/usr/bin/env python3
"""A client of the Python SDK 2.x (`mcp` 2.3.0) on its stdio transport, for
`mcpctl serve --stdio`.

Usage:
    modern_stdio_client.py SPEC

SPEC is JSON: {"command": PATH, "args": [...], "cwd": DIR, "env": {...}, "mode": MODE,
"call": [TOOL, {args}], "calls": [[TOOL, {args}], ...], "discover": BOOL} where MODE is the
SDK's connect mode ("auto": probe, fall back to initialize; "2026-07-28": pinned: no probe,
no initialize; "legacy"). The client declares elicitation and answers every question
{"name": "Ada"}. With "discover", it sends `server/discover` first.

Prints {"protocol", "discover": {...}, "tools": [names], "result": {...}, "results": [{...}],
"asked": [messages]} on stdout, or {"error": {"code", "message", "data"}} when the connection
fails with a JSON-RPC error; exit 0, or 1 on any other error.
Run it with .deps/venv-modern/bin/python.
"""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import Client, MCPError, types
from mcp.client.stdio import StdioServerParameters


def first_mcp_error(exc: BaseException) -> MCPError | None:
    if isinstance(exc, MCPError):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for e in exc.exceptions:
            found = first_mcp_error(e)
            if found is not None:
                return found
    return None


async def run(spec: dict) -> dict:
    params = StdioServerParameters(
        command=spec["command"], args=spec.get("args", []), env=spec.get("env"), cwd=spec.get("cwd")
    )
    asked: list = []

    async def elicit(_ctx, p: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(getattr(p, "message", None))
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    dump = lambda r: r.model_dump(mode="json", by_alias=True, exclude_none=True)  # noqa: E731
    mode = spec.get("mode", "auto")
    async with Client(params, mode=mode, cache=None, elicitation_callback=elicit) as client:
        out: dict = {"protocol": client.protocol_version}
        if spec.get("discover"):
            out["discover"] = dump(await client.session.discover())
        tools = await client.list_tools()
        out["tools"] = [t.name for t in tools.tools]
        if spec.get("call"):
            name, args = spec["call"]
            out["result"] = dump(await client.call_tool(name, args))
        out["results"] = []
        for name, args in spec.get("calls", []):
            out["results"].append(dump(await client.call_tool(name, args)))
        out["asked"] = asked
        return out


def main() -> int:
    spec = json.loads(sys.argv[1])
    try:
        print(json.dumps(asyncio.run(run(spec))))
    except BaseException as e:  # noqa: BLE001
        err = first_mcp_error(e)
        if err is None:
            print(f"modern_stdio_client.py: {e!r}", file=sys.stderr)
            return 1
        print(json.dumps({"error": {"code": err.error.code, "message": err.error.message, "data": err.error.data}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
