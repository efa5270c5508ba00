"""Rate limits: per-key requests and tokens per minute, and the slowing of clients that keep
presenting wrong keys.

`limiter` holds the rules (a token bucket per key and dimension, kept as GCRA's one
timestamp); `base` the one operation every backend performs atomically; `memory`,
`postgres` and `redisdb` the backends, of which `registry` picks the server's.

May import: store, items, config, errors and generated; nothing above.
"""
