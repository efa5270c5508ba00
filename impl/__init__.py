"""openresponses: a spec-first server for the Open Responses API, and its conformance harness.

The import name maps onto three top-level folders (pyproject): `impl/` is this package,
handwritten; `generated/` is `openresponses.generated`, made by `codegen/` from `spec/`;
`conformance/` is `openresponses.conformance`, the harness. Inside `impl/`, layers from top
to bottom, each importing only those below it (import-linter checks it, see pyproject):

    cli, serving, app     entry points: the command line, uvicorn, the ASGI app
    api/                  transports: HTTP handlers, SSE, WebSocket, dialects, auth
    core/                 the turn pipeline: a response from request to stored result
    tools/                server-side tools (file_search, web_search, MCP)
    providers/, vectors/  model providers; embeddings, chunk index and search
    files/                uploaded files' bytes and limits
    store/                responses, conversations, files' and vector stores' metadata
    items, tokens, config, errors   the vocabulary every layer shares
"""
