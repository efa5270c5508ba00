"""Embeddings, vector stores and search: the models that turn text into vectors
(`embedders`, `minilm`), ingestion of files into chunks (`parsers`, `chunking`, `ingest`),
and the index that searches them (`ann`, `index`, `search`).

May import: files, store and the shared modules; never core, api, tools or providers.
"""
