#!/usr/bin/env python3
"""A client of the Python SDK 2.x (`mcp` 2.3.0) on its stdio transport, for
`mcpctl serve --stdio`.

Usage:
    modern_stdio_client.py SPEC

SPEC is JSON: {"command": PATH, "args": [...], "cwd": DIR, "env": {...}, "mode": MODE,
"call": [TOOL, {args}]} where MODE is the SDK's connect mode ("auto": probe, fall back to
initialize; "2026-07-28": pinned; "legacy").

Prints {"tools": [names], "result": {...}} on stdout, or {"error": {"code", "message", "data"}}
when the connection fails with a JSON-RPC error; exit 0, or 1 on any other error.
Run it with .deps/venv-modern/bin/python.
"""

from __future__ import annotations

import asyncio
import json
import sys

from mcp import Client, MCPError
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
    async with Client(params, mode=spec.get("mode", "auto"), cache=None) as client:
        tools = await client.list_tools()
        out: dict = {"tools": [t.name for t in tools.tools]}
        if spec.get("call"):
            name, args = spec["call"]
            r = await client.call_tool(name, args)
            out["result"] = r.model_dump(mode="json", by_alias=True, exclude_none=True)
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
