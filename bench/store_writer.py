"""CPU the journal's writer spends per stored response, by batch size, on a DuckDB file.

    python bench/store_writer.py --batches 200 --sizes 1,35,70,140

The journal (`impl/store/journal.py`) applies saves to the database in batches, one
transaction each, on a thread of the store's own. This times that call (`SqlStore`'s
batch save) on the thread that runs it (`time.thread_time`, which other load on the machine
changes little) with responses shaped like the gateway's: one user message in, one
assistant message out. A batch has a fixed cost (its statements and commit) and a cost per
response; the journal's gathering window decides how many responses share the fixed part.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from openresponses.core import intake
from openresponses.core.builder import usage_model
from openresponses.generated import openai_models as m
from openresponses.items import new_id, user_text
from openresponses.providers.base import UsageReport
from openresponses.store import duckdb_url, open_store
from openresponses.store.base import StoredResponse
from openresponses.store.codec import Encoded, encode
from openresponses.store.sql import SqlStore


def record() -> Encoded:
    """A completed response as the gateway stores it (`initial_response` echoes the request)."""
    request = m.CreateResponse.model_validate({"model": "bench", "input": "Say hello"})
    reply = m.OutputMessage(
        id=new_id("message"),
        type="message",
        role="assistant",
        status="completed",
        content=[
            m.OutputTextContent(
                type="output_text", text="Hello from the bench.", annotations=[], logprobs=[]
            )
        ],
    )
    response = intake.initial_response(request, "bench").model_copy(
        update={
            "status": "completed",
            "output": [reply],
            "usage": usage_model(UsageReport(input_tokens=8, output_tokens=5)),
        }
    )
    return encode(StoredResponse(response, [user_text("Say hello")]))


async def measure(size: int, batches: int) -> float:
    """Seconds of the writer thread's CPU per batch of `size` new responses."""
    with tempfile.TemporaryDirectory() as directory:
        store = await open_store(duckdb_url(Path(directory)))
        assert isinstance(store, SqlStore)
        try:
            work = [[record() for _ in range(size)] for _ in range(batches)]

            def apply() -> float:
                started = time.thread_time()
                for batch in work:
                    store._save_many(batch)
                return time.thread_time() - started

            return await asyncio.to_thread(apply) / batches
        finally:
            await store.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--sizes", default="1,35,70,140", help="responses per batch")
    args = parser.parse_args()
    print("| responses per batch | CPU per batch | CPU per response |\n|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        per_batch = asyncio.run(measure(size, args.batches))
        print(f"| {size} | {per_batch * 1000:.2f} ms | {per_batch / size * 1e6:.0f} µs |")


if __name__ == "__main__":
    main()
