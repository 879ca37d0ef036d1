#!/usr/bin/env python3
"""One cell-row of tests/era_matrix.rs for the Python SDK 2.x (`mcp` 2.3.0): connect to the
gateway once and run every feature against each child behind the URL; print one JSON report.

Usage:
    era_client.py URL ERA TARGETS
ERA is "modern" (pinned to 2026-07-28: no probe, no initialize) or "legacy" (initialize
and a session). TARGETS names the children behind URL as NAME=PREFIX, comma-separated:
"leg=leg__,mod=mod__" on /mcp, "leg=" on /mcp/leg. The client declares elicitation and
answers every question {"name": "Ada"}.

Prints {"sdk": "py", "era", "protocol", "tools": [names], "targets": {NAME: {echo,
progress: {count, text}, cancel: {aborted, progress_before, status}, resources: [uris],
read, prompts: [names], prompt, elicit, asked}}}; a feature that failed holds
{"error": {"code", "message"}}. Exit 1 (message on stderr) when it cannot connect at all.

With MCPCTL_GATE=1 the question to the legacy child `leg` waits: the driver prints "ready"
and asks only after a line on stdin (the gateway can route a stdio child's own request
only while one client session has requests in flight to it; the test lets these questions
out one at a time).

Run it with .deps/venv-modern/bin/python.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys

from mcp import Client, MCPError, types


def flatten(exc: BaseException) -> str:
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(flatten(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}"


def failure(exc: BaseException) -> dict:
    if isinstance(exc, MCPError):
        return {"error": {"code": exc.code, "message": exc.error.message}}
    return {"error": {"code": None, "message": flatten(exc)}}


def text_of(result) -> str | None:
    for block in result.content:
        if isinstance(block, types.TextContent):
            return block.text
    return None


async def feature(f):
    try:
        return await f()
    except Exception as e:  # noqa: BLE001 - recorded in the report, judged by the test
        return failure(e)


async def run(url: str, era: str, targets: str) -> dict:
    asked: list = []

    async def elicit(_ctx, params: types.ElicitRequestParams) -> types.ElicitResult:
        asked.append(getattr(params, "message", None))
        return types.ElicitResult(action="accept", content={"name": "Ada"})

    mode = "2026-07-28" if era == "modern" else "legacy"
    run_id = os.urandom(4).hex()
    async with Client(url, mode=mode, cache=None, elicitation_callback=elicit) as client:
        out: dict = {"sdk": "py", "era": era, "protocol": client.protocol_version}
        out["tools"] = sorted(t.name for t in (await client.list_tools()).tools)
        out["targets"] = {}
        gated: list = []
        for pair in targets.split(","):
            name, prefix = pair.split("=")
            t: dict = {}

            async def echo():
                return text_of(await client.call_tool(f"{prefix}echo", {"text": "hi"}))

            async def progress():
                count = 0

                async def on_progress(_p, _t, _m):
                    nonlocal count
                    count += 1

                r = await client.call_tool(f"{prefix}slow", {"ms": 300, "tag": f"progress-{run_id}"}, progress_callback=on_progress)
                return {"count": count, "text": text_of(r)}

            async def cancel():
                tag = f"cancel-py-{era}-{run_id}-{prefix or 'one'}"
                first = asyncio.Event()
                seen = 0

                async def on_progress(_p, _t, _m):
                    nonlocal seen
                    seen += 1
                    first.set()

                task = asyncio.create_task(
                    client.call_tool(f"{prefix}slow", {"ms": 20000, "tag": tag}, progress_callback=on_progress)
                )
                # Cancel once the call is known to run at the child (its first progress), or after 10 s.
                try:
                    await asyncio.wait_for(first.wait(), 10)
                except TimeoutError:
                    pass
                task.cancel()
                try:
                    r = await task
                    aborted: object = {"completed": text_of(r)}
                except asyncio.CancelledError:
                    aborted = "aborted"
                except Exception as e:  # noqa: BLE001
                    aborted = failure(e)
                status = None
                for _ in range(50):
                    status = text_of(await client.call_tool(f"{prefix}status", {"tag": tag}))
                    if status != "running":
                        break
                    await asyncio.sleep(0.1)
                return {"aborted": aborted, "progress_before": seen, "status": status}

            async def resources():
                return sorted(str(r.uri) for r in (await client.list_resources()).resources)

            async def read():
                r = await client.read_resource(f"era://{name}/info")
                return r.contents[0].text

            async def prompts():
                return sorted(p.name for p in (await client.list_prompts()).prompts)

            async def prompt():
                r = await client.get_prompt(f"{prefix}greet", {"name": "Ada"})
                return r.messages[0].content.text

            async def ask(prefix=prefix):
                r = await client.call_tool(f"{prefix}ask", {"what": "deploy"})
                return {"isError": text_of(r)} if r.is_error else text_of(r)

            for key, f in [("echo", echo), ("progress", progress), ("cancel", cancel), ("resources", resources),
                           ("read", read), ("prompts", prompts), ("prompt", prompt)]:
                t[key] = await feature(f)
            async def ask_and_record(t=t, ask=ask):
                before = len(asked)
                t["elicit"] = await feature(ask)
                t["asked"] = asked[before:]

            out["targets"][name] = t
            if name == "leg" and os.environ.get("MCPCTL_GATE") == "1":
                gated.append(ask_and_record)
            else:
                await ask_and_record()
        if gated:
            print("ready", flush=True)
            await asyncio.to_thread(sys.stdin.readline)
            for ask in gated:
                await asyncio.wait_for(ask(), 60)
        return out


def main() -> int:
    if len(sys.argv) != 4:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        # Bounded: 60 s for the features, as long again for the test's go-ahead and the rest.
        out = asyncio.run(asyncio.wait_for(run(*sys.argv[1:4]), timeout=180))
    except BaseException as e:  # noqa: BLE001 - one line for the test's failure message
        print(flatten(e), file=sys.stderr)
        return 1
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
