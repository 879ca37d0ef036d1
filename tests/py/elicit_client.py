#!/usr/bin/env python3
"""An MCP client (the official Python SDK) that answers elicitation requests as told.

Usage:
    elicit_client.py URL --answer accept|refuse|decline|cancel [--timeout S] call TOOL JSONARGS
    elicit_client.py URL --answer accept|... list-tools

--answer accept   declares the elicitation capability; answers accept, {"approve": true}
--answer refuse   declares it; answers accept, {"approve": false}
--answer decline  declares it; answers decline
--answer cancel   declares it; answers cancel

Prints one JSON object on stdout:
    {"asked": [<params of each elicitation/create>], "result": {...} | null, "error": "..." | null}
"result" holds {"content": [...], "isError": bool} (or the tool names for list-tools);
"error" the message of a JSON-RPC error answer. Exit status: 0 when it printed that,
1 on a transport failure (message on stderr), 2 on bad usage.

Run it with the project venv: .deps/venv/bin/python tests/py/elicit_client.py ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta

from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client
from mcp.shared.exceptions import McpError


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="elicit_client.py")
    p.add_argument("url")
    p.add_argument("--answer", required=True, choices=["accept", "refuse", "decline", "cancel"])
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list-tools")
    call = sub.add_parser("call")
    call.add_argument("tool")
    call.add_argument("jsonargs", nargs="?", default="{}")
    return p.parse_args(argv)


def flatten_exception(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(flatten_exception(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def run(args: argparse.Namespace, arguments: dict | None) -> dict:
    asked: list[dict] = []

    async def on_elicit(context, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(params.model_dump(mode="json", by_alias=True, exclude_none=True))
        if args.answer == "accept":
            return types.ElicitResult(action="accept", content={"approve": True})
        if args.answer == "refuse":
            return types.ElicitResult(action="accept", content={"approve": False})
        return types.ElicitResult(action=args.answer)

    out: dict = {"asked": asked, "result": None, "error": None}
    async with streamablehttp_client(args.url, timeout=args.timeout) as (read, write, _):
        async with ClientSession(read, write, elicitation_callback=on_elicit,
                                 read_timeout_seconds=timedelta(seconds=args.timeout)) as session:
            await session.initialize()
            try:
                if args.command == "list-tools":
                    out["result"] = [t.name for t in (await session.list_tools()).tools]
                else:
                    r = await session.call_tool(args.tool, arguments)
                    out["result"] = {
                        "content": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in r.content],
                        "isError": bool(r.isError),
                    }
            except McpError as e:
                out["error"] = e.error.message
    return out


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    arguments = None
    if args.command == "call":
        try:
            arguments = json.loads(args.jsonargs)
        except json.JSONDecodeError as e:
            print(f"elicit_client: JSONARGS is not valid JSON: {e}", file=sys.stderr)
            return 2
    try:
        out = asyncio.run(run(args, arguments))
    except BaseException as e:  # noqa: BLE001 - report anything as a failure
        if isinstance(e, KeyboardInterrupt):
            raise
        print(f"elicit_client: error: {flatten_exception(e)}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
