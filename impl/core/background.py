"""Responses running in this process: background ones, and every one in flight.

A background response (`background: true`) runs in a task of the server, not the request.
The request returns at once (`queued`); the response runs to the end whether or not anyone
listens, and its stream events are kept, so a client may stream it from the start, drop the
connection and come back with `GET /responses/{id}?stream=true&starting_after=N` for the
events after sequence number N.

`POST /responses/{id}/cancel` stops any response in flight here, background or not: the
model (or the server tools) is interrupted, and the response ends as `cancelled` with what
it had made, on its stream, in the store and in the answer to the request that created it.

Event logs live in this process's memory: while the response runs and for `RETAIN_SECONDS`
after it ends. The response itself is in the store like any other, so polling with GET works
from any replica and after a restart; resuming a stream needs the replica that runs it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from openresponses import metrics
from openresponses.core.builder import Event
from openresponses.generated import openai_models as m
from openresponses.items import Item
from openresponses.store.base import Store

INTERRUPTED = "The server stopped before the response completed."

CLOSE_SECONDS = 5.0
"""How long a shutdown waits for the responses it stops to be stored as failed."""

RETAIN_SECONDS = 600.0
"""How long a finished response's events stay available for resuming its stream."""


class Driven(Protocol):
    """A response turn as `Runs` drives and stops it (core.turn.Turn)."""

    project: str
    stored: bool
    cancel_requested: bool
    generating: bool
    shut_down: bool

    @property
    def response(self) -> m.Response: ...

    @property
    def conversation(self) -> list[Item]: ...

    def events(self) -> AsyncGenerator[Event, None]: ...


class Run:
    """One background response: its turn, driven by a task, and the events it produced.

    To a transport it reads as a turn does (see core.pipeline's `Started`): its events are
    followed from the start, and the answer to its create request is the response as queued.
    """

    stored = True

    def __init__(self, turn: Driven) -> None:
        self.turn = turn
        self.queued = turn.response.model_copy(deep=True)
        self.log: list[Event] = []  # log[n].sequence_number == n
        self.finished_at: float | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._drive(), name=f"background {turn.response.id}")

    @property
    def response(self) -> m.Response:
        return self.turn.response

    @property
    def conversation(self) -> list[Item]:
        return self.turn.conversation

    async def open(self) -> None:
        """Nothing to wait for: the response runs in its own task, whoever listens."""

    def events(self) -> AsyncGenerator[Event, None]:
        return self.follow()

    async def result(self) -> m.Response:
        return self.queued

    async def _drive(self) -> None:
        metrics.BACKGROUND.inc()
        try:
            async for event in self.turn.events():
                self.log.append(event)
                self._notify()
        finally:
            metrics.BACKGROUND.dec()
            self.finished_at = time.monotonic()
            self._notify()

    def _notify(self) -> None:
        """Wake every follower; each waits on the event current when it looked."""
        self._changed.set()
        self._changed = asyncio.Event()

    async def follow(self, after: int = -1) -> AsyncGenerator[Event, None]:
        """The events after sequence number `after`, then each new one until the last."""
        index = max(after + 1, 0)
        while True:
            changed = self._changed
            while index < len(self.log):
                yield self.log[index]
                index += 1
            if self.finished_at is not None:
                return
            await changed.wait()


@dataclass
class Flight:
    """A response between its first event and its last: the task that runs it, and when it
    has ended (stored, its closing events made)."""

    turn: Driven
    task: asyncio.Task[object]
    ended: asyncio.Event = field(default_factory=asyncio.Event)


class Runs:
    """The responses of this process: background runs by id, and all those in flight."""

    def __init__(self) -> None:
        self._runs: dict[str, Run] = {}
        self._flights: dict[str, Flight] = {}
        self.stopping = False
        """Set when the server starts to stop: responses cut from then on failed because of
        the shutdown, not because their client left."""
        self.waiting: set[asyncio.Future[Any]] = set()
        """Requests waiting for the model, and relayed chat streams (see api.common's
        unless_gone and stopped_with_server), stopped with the responses in flight."""

    def enter(self, turn: Driven) -> None:
        """Called by `Turn.events` as it starts, in the task that runs it."""
        task = asyncio.current_task()
        assert task is not None  # a turn's events are always read in a task
        self._flights[turn.response.id] = Flight(turn, task)
        metrics.IN_FLIGHT.inc()

    def leave(self, turn: Driven) -> None:
        """Called by `Turn.events` once the response has ended and is stored (or abandoned)."""
        flight = self._flights.pop(turn.response.id, None)
        if flight is not None:
            metrics.IN_FLIGHT.dec()
            flight.ended.set()

    async def cancel(self, project: str, response_id: str) -> Driven | None:
        """Stop the project's response in flight here and end it as `cancelled`; returns its
        turn once the response has ended and is stored, or None when no response of that id
        is in flight here for the project.

        Once the model has finished, the response ends as it would have: cancelling cannot
        take back an answer that is complete.
        """
        flight = self._flights.get(response_id)
        if flight is None or flight.turn.project != project:
            return None
        flight.turn.cancel_requested = True
        if flight.turn.generating:
            flight.task.cancel()  # the turn makes this a cancelled response
        await flight.ended.wait()
        return flight.turn

    def start(self, turn: Driven) -> Run:
        self._forget_old()
        run = Run(turn)
        self._runs[turn.response.id] = run
        return run

    def get(self, project: str, response_id: str) -> Run | None:
        run = self._runs.get(response_id)
        return run if run is not None and run.turn.project == project else None

    def _forget_old(self) -> None:
        horizon = time.monotonic() - RETAIN_SECONDS
        for key, run in list(self._runs.items()):
            if run.finished_at is not None and run.finished_at < horizon:
                del self._runs[key]

    async def stop(self, grace: float) -> None:
        """The server is stopping: what runs gets `grace` seconds to end by itself; then the
        responses in flight end failed (stored, their last events sent) and the requests
        still waiting for the model are refused."""
        self.stopping = True
        await asyncio.sleep(grace)
        for flight in list(self._flights.values()):
            if flight.turn.generating:  # as for a cancel: elsewhere it is about to end
                flight.turn.shut_down = True
                _cancel_once(flight.task)
        for task in list(self.waiting):
            _cancel_once(task)

    async def close(self) -> None:
        """At shutdown: responses still running end as failed, and say why. Background ones
        are stopped here; the HTTP server has already cut the requests that outlasted its
        grace period. Returns once all are stored, or after `CLOSE_SECONDS`."""
        self.stopping = True
        running = [run for run in self._runs.values() if run.finished_at is None]
        for run in running:
            run.task.cancel()
        ending = [asyncio.ensure_future(f.ended.wait()) for f in self._flights.values()]
        if running or ending:
            await asyncio.wait({*ending, *(run.task for run in running)}, timeout=CLOSE_SECONDS)
        for waiter in ending:
            waiter.cancel()


def _cancel_once(task: asyncio.Future[Any]) -> None:
    """A JSON create's task is both waiting and in flight: one cancel, which it handles."""
    if not task.done() and not (isinstance(task, asyncio.Task) and task.cancelling()):
        task.cancel()


async def fail_interrupted(store: Store) -> list[str]:
    """Record as failed the responses a stopped server left `queued` or `in_progress`; returns
    their ids.

    A response is stored as running when it starts, so that it can be polled; a server that
    is killed (or loses power) never stores its end, and clients polling it would wait for
    ever. Only for a store no other process can be using (see store.single_process): with
    replicas, a response running means nothing about the one that was stopped.
    """
    unfinished = await store.unfinished()
    for project, response_id in unfinished:
        record = await store.get(project, response_id)
        if record is None:
            continue
        # Its output is empty: a running response is stored at its start, not as it goes.
        error = m.ResponseError1(code="server_error", message=INTERRUPTED)
        failed = record.response.model_copy(update={"status": "failed", "error": error})
        await store.save(replace(record, response=failed))
    return [response_id for _, response_id in unfinished]
