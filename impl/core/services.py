"""The server's parts, built once at start-up and closed at shutdown.

`Services` is the dependency container every handler and the turn pipeline reach through;
`open_services` is the one place that builds it from `Settings` (the app's lifespan enters
it), in dependency order, and closes what it opened in reverse.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from openresponses import tokens
from openresponses.config import Settings
from openresponses.core import compaction
from openresponses.core.attachments import Attachments
from openresponses.core.background import Runs, fail_interrupted
from openresponses.files.blobs import Blobs
from openresponses.providers import http
from openresponses.providers.registry import Registry
from openresponses.ratelimit.limiter import Limiter
from openresponses.ratelimit.registry import open_counters
from openresponses.store import duckdb_url, open_store, single_process
from openresponses.store.base import Store
from openresponses.store.keys import KeyRing, open_keys
from openresponses.store.objects import Objects
from openresponses.store.sql import create_store_engine
from openresponses.tools.base import ToolServices
from openresponses.tools.web.page import PageFetcher
from openresponses.tools.web.registry import backend_from_settings
from openresponses.vectors.ann import HnswParams
from openresponses.vectors.embedders import Embedder, LocalMiniLM
from openresponses.vectors.index import VECTORS_FILE, ChunkIndex
from openresponses.vectors.ingest import Ingestor
from openresponses.vectors.search import Searcher

log = logging.getLogger("openresponses")


@dataclass
class Services:
    """Everything a handler needs, built once when the server starts."""

    settings: Settings
    store: Store
    registry: Registry
    client: aiohttp.ClientSession
    secret: bytes
    """Seals compaction items (see core.compaction)."""
    runs: Runs
    """Responses running in this process, background or in flight (see core.background)."""
    tools: ToolServices
    """What server tools use (see tools.base)."""
    objects: Objects
    """Files and vector stores (metadata)."""
    blobs: Blobs
    """Files' bytes."""
    embedder: Embedder
    """The local embedding model (loaded on first use)."""
    ingestor: Ingestor
    """Files into vector stores, in the background; `ingestor.index` holds the chunks."""
    searcher: Searcher
    """Vector store search, for the search endpoint and the file_search tool."""
    attachments: Attachments
    """Inlines file references before model calls."""
    keys: KeyRing
    """The server's API keys, and the project each belongs to."""
    limiter: Limiter
    """Keys' requests and tokens per minute, and wrong keys per client address."""
    journal_dir: Path | None = None
    """Where the store journals its saves, when it does (see store.journal)."""


@asynccontextmanager
async def open_services(settings: Settings, runs: Runs) -> AsyncIterator[Services]:
    """The server's parts for `settings`, open while the context lasts."""
    async with http.session(read_timeout=settings.upstream_timeout) as client:
        url = settings.store_url or duckdb_url(settings.data_dir)
        # The journal's local file is for a store one process holds (see store.journal):
        # replicas must read each other's saves at once, and outlive each other's disks.
        embedded = single_process(url)
        journal_dir = settings.data_dir / "journal" if embedded else None
        store = await open_store(
            url,
            journal_dir=journal_dir,
            journal_fsync=settings.journal_fsync,
        )
        if embedded:
            interrupted = await fail_interrupted(store)
            if interrupted:
                log.warning("%d response(s) interrupted by a stop marked failed", len(interrupted))
        # A second engine on the migrated database: its own pool for its own threads.
        objects = Objects(create_store_engine(url), day_seconds=settings.expiry_day_seconds)
        keys = KeyRing(
            await open_keys(url, settings.data_dir),
            settings.api_keys,
            settings.key_cache_seconds,
        )
        limiter = Limiter(open_counters(settings, url), settings.auth_failures_per_minute)
        embedder = LocalMiniLM()
        blobs = Blobs(settings.data_dir / "files")
        index = ChunkIndex(
            settings.data_dir / VECTORS_FILE,
            embedder.dimensions,
            hnsw_threshold=settings.hnsw_threshold,
            hnsw=HnswParams.with_ef_search(settings.hnsw_ef_search),
        )
        ingestor = Ingestor(objects.store_files, blobs, index, embedder)
        await ingestor.resume()
        registry = Registry(
            settings.providers,
            settings.default_provider,
            client,
            settings.models_ttl,
            settings.project_providers,
        )
        secret = compaction.load_secret(settings.data_dir, settings.secret)
        tokens.seed_cache(settings.data_dir / "tiktoken")
        pages = PageFetcher.from_settings(settings)
        searcher = Searcher(index, embedder, objects.vector_stores)
        tools = ToolServices(
            settings.allow_private_networks,
            backend_from_settings(settings, client),
            pages,
            searcher,
        )
        attachments = Attachments(
            objects.files,
            blobs,
            allow_private=settings.allow_private_networks,
            max_bytes=settings.max_attachment_bytes,
        )
        try:
            yield Services(
                settings,
                store,
                registry,
                client,
                secret,
                runs,
                tools,
                objects=objects,
                blobs=blobs,
                embedder=embedder,
                ingestor=ingestor,
                searcher=searcher,
                attachments=attachments,
                keys=keys,
                limiter=limiter,
                journal_dir=journal_dir,
            )
        finally:
            await runs.close()
            await attachments.close()
            await pages.close()
            await ingestor.close()
            await index.close()
            embedder.close()
            await limiter.close()
            await keys.close()
            await objects.close()
            await store.close()
