"""The conformance harness: checks any Open Responses endpoint at a base URL (`cli`,
`runner`), one module per area in `checks/`, the stream grammar (`grammar`), the two specs'
schemas (`schemas`), the HTTP and WebSocket client (`wire`) and reports (`report`).

It is a product of its own: it imports nothing of the server's (import-linter checks it),
only `openresponses.generated`'s spec data.
"""
