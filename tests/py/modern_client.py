#!/usr/bin/env python3
"""A client of the Python SDK 2.x (`mcp` 2.3.0) for the gateway's 2026-07-28 tests.

Usage:
    modern_client.py URL [--token T] [--mode MODE] list-tools
        prints {"protocol": V, "server": NAME|null, "tools": [names]}
    modern_client.py URL [--token T] [--mode MODE] call TOOL JSONARGS
        prints {"protocol": V, "result": {...}} or {"protocol": V, "error": {"code", "message"}}
        when the server answers the call with a JSON-RPC error

--answer A makes the client answer elicitation ({"answer": A}) and sampling (A) requests,
which it then declares it supports (2026-07-28: input-required results, retried).
--approve ACTION answers elicitation as a user would an approval request: "accept" with
{"approve": true}, "refuse" (accept, unticked), "decline" or "cancel"; the questions asked
are printed as "asked": [{"message", "requestedSchema"}].
MODE is the SDK's connect mode: "2026-07-28" (pinned: no probe, no initialize; the
default), "auto" (probe server/discover, fall back to initialize) or "legacy".
Exit status: 0 on an answer (a JSON-RPC error to `call` is an answer), 1 on any other
error (message on stderr), 2 on bad usage.

Run it with .deps/venv-modern/bin/python.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from mcp import Client, MCPError, types
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="modern_client.py")
    p.add_argument("url")
    p.add_argument("--token")
    p.add_argument("--mode", default="2026-07-28")
    p.add_argument("--approve", choices=["accept", "refuse", "decline", "cancel"])
    p.add_argument("--answer", help="answer elicitation with {\"answer\": ANSWER} and sampling with ANSWER (declares both capabilities)")
    sub = p.add_subparsers(dest="command", required=True)
    sub.add_parser("list-tools")
    call = sub.add_parser("call")
    call.add_argument("tool")
    call.add_argument("jsonargs", nargs="?", default="{}")
    return p.parse_args()


def flatten(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(flatten(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


async def run(args: argparse.Namespace) -> dict:
    headers = {"Authorization": f"Bearer {args.token}"} if args.token else None
    http = create_mcp_http_client(headers=headers)
    async with http:
        transport = streamable_http_client(args.url, http_client=http)
        callbacks: dict = {}
        asked: list = []
        if args.approve is not None:

            async def approve(_ctx, params: types.ElicitRequestParams) -> types.ElicitResult:
                asked.append(params.model_dump(mode="json", by_alias=True, exclude_none=True))
                if args.approve in ("accept", "refuse"):
                    return types.ElicitResult(action="accept", content={"approve": args.approve == "accept"})
                return types.ElicitResult(action=args.approve)

            callbacks = {"elicitation_callback": approve}
        elif args.answer is not None:

            async def elicit(_ctx, _params: types.ElicitRequestParams) -> types.ElicitResult:
                return types.ElicitResult(action="accept", content={"answer": args.answer})

            async def sample(_ctx, _params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
                return types.CreateMessageResult(
                    role="assistant", content=types.TextContent(type="text", text=args.answer), model="test"
                )

            callbacks = {"elicitation_callback": elicit, "sampling_callback": sample}
        async with Client(transport, mode=args.mode, cache=None, **callbacks) as client:
            out: dict = {"protocol": client.protocol_version}
            info = client.server_info
            out["server"] = info.name if info is not None else None
            if args.command == "list-tools":
                listing = await client.list_tools()
                out["tools"] = [t.name for t in listing.tools]
            else:
                try:
                    r = await client.call_tool(args.tool, json.loads(args.jsonargs))
                    out["result"] = r.model_dump(mode="json", by_alias=True, exclude_none=True)
                except MCPError as e:
                    out["error"] = {"code": e.code, "message": e.error.message}
            if args.approve is not None:
                out["asked"] = [{"message": a.get("message"), "requestedSchema": a.get("requestedSchema")} for a in asked]
            return out


def main() -> int:
    args = parse_args()
    try:
        out = asyncio.run(asyncio.wait_for(run(args), timeout=60))
    except BaseException as e:  # noqa: BLE001 - one line for the test's failure message
        print(flatten(e), file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
