#!/usr/bin/env python3
"""A 2026-07-28 stdio server (Python SDK 2.3, `mcp` 2.3.0) with resources that change, for the
gateway's translation of session clients' `resources/subscribe` into `subscriptions/listen`.

Resources: note://a, note://b (text).
Tools:
    touch(uri)  -> announces that `uri` changed (notifications/resources/updated, on the
                   listen streams whose filter names it), then "touched <uri>"
    streams()   -> how many subscriptions/listen streams are open now, as text

Run it with .deps/venv-modern/bin/python.
"""

from __future__ import annotations

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus


def build() -> MCPServer:
    bus = InMemorySubscriptionBus()
    server = MCPServer("py-modern-resources", subscriptions=bus)

    @server.resource("note://a")
    def note_a() -> str:
        return "a"

    @server.resource("note://b")
    def note_b() -> str:
        return "b"

    @server.tool(description="Announce that a resource changed.")
    async def touch(uri: str, ctx: Context) -> str:
        await ctx.notify_resource_updated(uri)
        return f"touched {uri}"

    @server.tool(description="How many subscriptions/listen streams are open.")
    def streams() -> str:
        return str(len(bus._listeners))  # noqa: SLF001 - the test's window into the fixture

    return server


if __name__ == "__main__":
    build().run()
