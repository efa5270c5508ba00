"""The checks, one module per area. Importing this package registers them all, in the order a
reader of a report expects: the basics first, the optional transports last."""

from importlib import import_module

AREAS = ("responses", "streaming", "tools", "state", "errors", "compact", "websocket", "fuzz")

for _area in AREAS:
    import_module(f"{__name__}.{_area}")
