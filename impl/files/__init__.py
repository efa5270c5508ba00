"""Uploaded files: their bytes on disk in the data directory (`blobs`), their metadata in the
store (`store.files`), and the limit on an upload's size (`limits`)."""
