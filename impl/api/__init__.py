"""Transports: the spec's operations over HTTP (one module per resource, named in the
generated operations table), server-sent events (`sse`), WebSocket mode (`websocket`), the
two dialects' wire spellings (`dialects`), keys and the caller (`auth`), and connexion's
routing (`routing`). Handlers read a request, call the layers below and render what they
return; no layer below imports this one.

May import: core and everything below it.
"""
