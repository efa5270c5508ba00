"""The server-side tools: the protocol the tool loop (`core.turn`) runs them through
(`base`, `registry`), one module per tool (`file_search`, `web_search`, `mcp`), and their
building blocks: the outbound URL guard (`guard`, `fetch`; core and api hold the URLs they
hand to providers to the same rule) and the web (`web/`: search backends and page fetching).

May import: providers, vectors, files, store and the shared modules; never core or api.
"""
