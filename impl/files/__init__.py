"""Uploaded files: their bytes on disk in the data directory (`blobs`), their media types
(`media`) and the limit on an upload's size (`limits`); their metadata is in the store
(`store.files`).

May import: store and the shared modules.
"""
