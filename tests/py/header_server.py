#!/usr/bin/env python3
"""A stdio MCP server (Python SDK 1.x, session-based) with one tool whose `region`
parameter is mirrored into the `Mcp-Param-Region` header (`x-mcp-header`) by 2026-07-28
clients: the gateway must check that header against the body.

Run it with .deps/venv/bin/python.
"""

from typing import Annotated

from mcp.server.fastmcp import FastMCP
from pydantic import Field

mcp = FastMCP("headers")


@mcp.tool()
def where(
    region: Annotated[str, Field(json_schema_extra={"x-mcp-header": "Region"})],
    shard: Annotated[int, Field(json_schema_extra={"x-mcp-header": "Shard"})] = 0,
) -> str:
    """Says where a query would run."""
    return f"{region}/{shard}"


if __name__ == "__main__":
    mcp.run()
