#!/usr/bin/env python3
"""Minimal MCP client built on the official Python SDK's Streamable HTTP client.

Usage:
    sdk_client.py URL [--token T] [--logs] list-tools
        prints a JSON list of the tool names, e.g. ["add", "divide"]
    sdk_client.py URL [--token T] [--logs] call TOOL JSONARGS
        prints {"content": [...], "isError": bool, "structuredContent": ... | null}

--token T sends "Authorization: Bearer T" on every HTTP request.
--logs    prints each notifications/message params received as one JSON line on stderr.

Exit status: 0 on success (also when the tool result has isError true: that is a
result, not a failure of this client), 1 on any protocol/transport error (message
on stderr), 2 on bad usage.

Run it with the project venv: .deps/venv/bin/python tests/py/sdk_client.py ...
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from datetime import timedelta

from mcp import ClientSession, types
from mcp.client.streamable_http import streamablehttp_client


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="sdk_client.py", description="MCP Streamable HTTP test client")
    p.add_argument("url")
    p.add_argument("--token", help="bearer token for the Authorization header")
    p.add_argument("--logs", action="store_true", help="print log notifications to stderr")
    p.add_argument("--timeout", type=float, default=30.0, help="seconds per request (default 30)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list-tools")
    call = sub.add_parser("call")
    call.add_argument("tool")
    call.add_argument("jsonargs", nargs="?", default="{}")
    return p.parse_args(argv)


def flatten_exception(exc: BaseException) -> str:
    # anyio task groups wrap the real error in (nested) ExceptionGroups.
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(flatten_exception(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def run(args: argparse.Namespace, arguments: dict | None) -> object:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        if args.logs:
            print(json.dumps(params.model_dump(mode="json", exclude_none=True)), file=sys.stderr, flush=True)

    async with streamablehttp_client(args.url, headers=headers, timeout=args.timeout) as (read, write, _):
        async with ClientSession(read, write, logging_callback=on_log,
                                 read_timeout_seconds=timedelta(seconds=args.timeout)) as session:
            await session.initialize()
            if args.command == "list-tools":
                result = await session.list_tools()
                return [tool.name for tool in result.tools]
            result = await session.call_tool(args.tool, arguments)
            return {
                "content": [c.model_dump(mode="json", by_alias=True, exclude_none=True) for c in result.content],
                "isError": bool(result.isError),
                "structuredContent": result.structuredContent,
            }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    arguments = None
    if args.command == "call":
        try:
            arguments = json.loads(args.jsonargs)
        except json.JSONDecodeError as e:
            print(f"sdk_client: JSONARGS is not valid JSON: {e}", file=sys.stderr)
            return 2
        if not isinstance(arguments, dict):
            print("sdk_client: JSONARGS must be a JSON object", file=sys.stderr)
            return 2
    try:
        out = asyncio.run(run(args, arguments))
    except BaseException as e:  # noqa: BLE001 - report anything as a failure
        if isinstance(e, KeyboardInterrupt):
            raise
        print(f"sdk_client: error: {flatten_exception(e)}", file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
