"""The server-side tools: the protocol the tool loop (`core.runner`) runs them through
(`base`, `registry`), each tool (`mcp`), and their building blocks: the outbound URL guard
(`guard`) and the web search backends (`web_search`)."""
