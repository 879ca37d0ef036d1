#!/usr/bin/env python3
"""A stdio MCP server (Python SDK 1.x, session-based) with a resource clients can
subscribe to: the tool `touch` sends `notifications/resources/updated` for it.

Run it with .deps/venv/bin/python.
"""

from mcp.server.fastmcp import Context, FastMCP
from pydantic import AnyUrl

NOTE = "memo://note"
mcp = FastMCP("resources")


@mcp.resource(NOTE)
def note() -> str:
    """A note that changes when touched."""
    return "note"


@mcp._mcp_server.subscribe_resource()
async def subscribe(uri: AnyUrl) -> None:
    pass


@mcp.tool()
async def touch(ctx: Context) -> str:
    """Says the note changed."""
    await ctx.session.send_resource_updated(AnyUrl(NOTE))
    return "touched"


if __name__ == "__main__":
    mcp.run()
