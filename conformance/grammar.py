"""The stream grammar: a state machine over a response's streaming events.

Schemas say what each event looks like; this says what may follow what. It is fed the events
in arrival order and records every departure as a `Violation` tagged with the rule it breaks,
so that each conformance check can report the rules it is named after:

* `lifecycle`: `response.created` first, then `response.in_progress` (after an optional
  `response.queued`); one response id throughout; exactly one terminal event
  (`response.completed` / `.failed` / `.incomplete`), last, whose status matches its name.
* `sequence`: `sequence_number` is an integer that strictly increases.
* `items`: `output_item.added` opens items at output_index 0, 1, 2, …; each is closed by one
  `output_item.done` with the same index, id and type; events naming an item (`item_id`)
  refer to an open item at their `output_index`; every item is closed before the end; an
  `incomplete` item is the last one and makes the response incomplete.
* `parts`: content parts (`content_part.added` / `.done`, `content_index` 0, 1, …) and
  reasoning summary parts (`summary_index`) open and close inside their item; deltas and
  `.done` events fall inside an open part; no part is left open when its item closes.
* `text`: the deltas of a text, refusal, reasoning or arguments stream concatenate to the
  `.done` event's full value, which is also the value in the closed part and the closed item.
* `output`: the terminal response's `output` equals the items the stream closed, in order.

Events of types the grammar does not know (extensions such as `acme:trace`, or tool events)
are checked only for `sequence` and, when they name an item, for `items`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

LIFECYCLE = "lifecycle"
SEQUENCE = "sequence"
ITEMS = "items"
PARTS = "parts"
TEXT = "text"
OUTPUT = "output"
RULES = (LIFECYCLE, SEQUENCE, ITEMS, PARTS, TEXT, OUTPUT)

TERMINAL = {
    "response.completed": "completed",
    "response.failed": "failed",
    "response.incomplete": "incomplete",
}
_OPENING = ("response.created", "response.queued", "response.in_progress")


@dataclass(frozen=True)
class _Stream:
    """A delta/done pair: the part it lives in (`index` names the index key) and the field of
    the done event that holds the whole value."""

    done: str
    index: str | None
    field: str


_DELTAS = {
    "response.output_text.delta": _Stream("response.output_text.done", "content_index", "text"),
    "response.refusal.delta": _Stream("response.refusal.done", "content_index", "refusal"),
    "response.reasoning_text.delta": _Stream(
        "response.reasoning_text.done", "content_index", "text"
    ),
    "response.reasoning.delta": _Stream("response.reasoning.done", "content_index", "text"),
    "response.reasoning_summary_text.delta": _Stream(
        "response.reasoning_summary_text.done", "summary_index", "text"
    ),
    "response.function_call_arguments.delta": _Stream(
        "response.function_call_arguments.done", None, "arguments"
    ),
    "response.mcp_call_arguments.delta": _Stream(
        "response.mcp_call_arguments.done", None, "arguments"
    ),
    "response.custom_tool_call_input.delta": _Stream(
        "response.custom_tool_call_input.done", None, "input"
    ),
}
_DONES = {stream.done: (delta, stream) for delta, stream in _DELTAS.items()}
_PART_EVENTS = {
    "response.content_part.added": ("content_index", True),
    "response.content_part.done": ("content_index", False),
    "response.reasoning_summary_part.added": ("summary_index", True),
    "response.reasoning_summary_part.done": ("summary_index", False),
}
_PART_FIELD = {"content_index": "content", "summary_index": "summary"}
_PART_VALUE = {"output_text": "text", "refusal": "refusal", "reasoning_text": "text"}


@dataclass(frozen=True)
class Violation:
    rule: str
    index: int
    """Position of the offending event in the stream (-1: the stream as a whole)."""
    message: str

    def __str__(self) -> str:
        where = f"event {self.index}: " if self.index >= 0 else ""
        return f"{where}{self.message}"


@dataclass
class _Item:
    output_index: int
    id: str | None
    type: str
    open_parts: set[tuple[str, int]] = field(default_factory=set)
    next_part: dict[str, int] = field(default_factory=dict)
    part_values: dict[tuple[str, int], str] = field(default_factory=dict)
    """Full values announced by `.done` events, by (index key, index); arguments use
    (`arguments`, 0)."""
    deltas: dict[tuple[str, int], list[str]] = field(default_factory=dict)
    closed: bool = False


class Grammar:
    """Feed events in order with `feed`, then call `finish`; read `violations`."""

    def __init__(self) -> None:
        self.violations: list[Violation] = []
        self._position = -1
        self._last_sequence: int | None = None
        self._response_id: str | None = None
        self._opening: list[str] = []
        self._terminal: dict[str, Any] | None = None
        self._items: list[_Item] = []
        self._closed_items: list[Any] = []

    def _fail(self, rule: str, message: str) -> None:
        self.violations.append(Violation(rule, self._position, message))

    def by_rule(self, *rules: str) -> list[Violation]:
        return [v for v in self.violations if v.rule in rules]

    # --- feeding --------------------------------------------------------------------------

    def feed(self, event: dict[str, Any]) -> None:
        self._position += 1
        kind = str(event.get("type"))
        self._sequence(event)
        if self._terminal is not None:
            self._fail(LIFECYCLE, f"{kind!r} arrived after the terminal event")
        if kind in _OPENING or kind in TERMINAL:
            self._response_event(kind, event)
        elif not self._opening and kind != "error":
            self._fail(LIFECYCLE, f"{kind!r} arrived before response.created")
        if kind == "response.output_item.added":
            self._item_added(event)
        elif kind == "response.output_item.done":
            self._item_done(event)
        elif kind in _PART_EVENTS:
            self._part_event(kind, event)
        elif kind in _DELTAS or kind in _DONES:
            self._text_event(kind, event)
        elif "item_id" in event:
            self._item_for(event)

    def _sequence(self, event: dict[str, Any]) -> None:
        number = event.get("sequence_number")
        if not isinstance(number, int) or isinstance(number, bool):
            self._fail(SEQUENCE, f"sequence_number is {number!r}, not an integer")
            return
        if self._last_sequence is not None and number <= self._last_sequence:
            self._fail(
                SEQUENCE, f"sequence_number {number} does not increase on {self._last_sequence}"
            )
        self._last_sequence = number

    def _response_event(self, kind: str, event: dict[str, Any]) -> None:
        response = event.get("response")
        if not isinstance(response, dict):
            self._fail(LIFECYCLE, f"{kind} carries no response object")
            return
        if self._response_id is None:
            self._response_id = response.get("id")
        elif response.get("id") != self._response_id:
            self._fail(
                LIFECYCLE,
                f"{kind} is for response {response.get('id')!r}, "
                f"the stream for {self._response_id!r}",
            )
        if kind in TERMINAL:
            self._terminal = event
            if response.get("status") != TERMINAL[kind]:
                self._fail(
                    LIFECYCLE,
                    f"{kind} carries status {response.get('status')!r}, not {TERMINAL[kind]!r}",
                )
            return
        expected = {
            "response.created": [],
            "response.queued": ["response.created"],
            "response.in_progress": ["response.created", "response.queued"],
        }[kind]
        if not self._opening and kind != "response.created":
            self._fail(LIFECYCLE, f"the stream starts with {kind}, not response.created")
        elif self._opening and self._opening[-1] not in expected:
            self._fail(LIFECYCLE, f"{kind} follows {self._opening[-1]}")
        self._opening.append(kind)

    def _item_added(self, event: dict[str, Any]) -> None:
        item = event.get("item") if isinstance(event.get("item"), dict) else {}
        assert isinstance(item, dict)
        index = event.get("output_index")
        if index != len(self._items):
            self._fail(
                ITEMS, f"output_item.added has output_index {index!r}, expected {len(self._items)}"
            )
        if "response.in_progress" not in self._opening:
            self._fail(LIFECYCLE, "output_item.added before response.in_progress")
        item_id = item.get("id")
        if item_id is not None and any(i.id == item_id for i in self._items):
            self._fail(ITEMS, f"item id {item_id!r} is used twice")
        if item.get("status") not in (None, "in_progress"):
            self._fail(ITEMS, f"item {item_id!r} is added with status {item.get('status')!r}")
        self._items.append(_Item(len(self._items), item_id, str(item.get("type"))))

    def _item_for(self, event: dict[str, Any]) -> _Item | None:
        """The open item an item-scoped event refers to (by `item_id` or `output_index`)."""
        kind = event.get("type")
        index = event.get("output_index")
        if not isinstance(index, int) or not 0 <= index < len(self._items):
            self._fail(ITEMS, f"{kind} refers to output_index {index!r}, which is not open")
            return None
        item = self._items[index]
        if "item_id" in event and event["item_id"] != item.id:
            self._fail(
                ITEMS,
                f"{kind} names item {event['item_id']!r} at output_index "
                f"{index}, which holds {item.id!r}",
            )
        if item.closed:
            self._fail(ITEMS, f"{kind} arrived after item {item.id!r} was done")
        return item

    def _item_done(self, event: dict[str, Any]) -> None:
        item_state = self._item_for(event)
        done = event.get("item") if isinstance(event.get("item"), dict) else {}
        assert isinstance(done, dict)
        self._closed_items.append(done)
        if item_state is None:
            return
        if done.get("id") != item_state.id or str(done.get("type")) != item_state.type:
            self._fail(
                ITEMS,
                f"output_item.done at {item_state.output_index} is "
                f"{done.get('type')} {done.get('id')!r}, but {item_state.type} "
                f"{item_state.id!r} was added there",
            )
        if done.get("status") == "in_progress":
            self._fail(ITEMS, f"item {item_state.id!r} is done with status 'in_progress'")
        for key, number in sorted(item_state.open_parts):
            self._fail(PARTS, f"item {item_state.id!r} is done with its {key} {number} open")
        self._check_item_values(item_state, done)
        item_state.closed = True

    def _check_item_values(self, state: _Item, done: dict[str, Any]) -> None:
        for (key, number), value in state.part_values.items():
            if key == "arguments":
                field_name = "input" if "input" in done and "arguments" not in done else key
                if done.get(field_name) != value:
                    self._fail(
                        TEXT,
                        f"item {state.id!r} is done with {field_name} "
                        f"{done.get(field_name)!r}, the stream said {value!r}",
                    )
                continue
            parts = done.get(_PART_FIELD[key])
            part = parts[number] if isinstance(parts, list) and number < len(parts) else None
            held = _part_value(part)
            if held is not None and held != value:
                self._fail(
                    TEXT,
                    f"item {state.id!r} holds {held!r} in its "
                    f"{_PART_FIELD[key]}[{number}], the stream said {value!r}",
                )

    def _part_event(self, kind: str, event: dict[str, Any]) -> None:
        key, opening = _PART_EVENTS[kind]
        item = self._item_for(event)
        if item is None:
            return
        number = event.get(key)
        if not isinstance(number, int):
            self._fail(PARTS, f"{kind} has {key} {number!r}")
            return
        slot = (key, number)
        if opening:
            expected = item.next_part.get(key, 0)
            if number != expected:
                self._fail(PARTS, f"{kind} opens {key} {number}, expected {expected}")
            item.next_part[key] = max(expected, number + 1)
            item.open_parts.add(slot)
            return
        if slot not in item.open_parts:
            self._fail(PARTS, f"{kind} closes {key} {number} of {item.id!r}, which is not open")
            return
        item.open_parts.discard(slot)
        held = _part_value(event.get("part"))
        announced = item.part_values.get(slot)
        if held is not None and announced is not None and held != announced:
            self._fail(TEXT, f"{kind} holds {held!r}, the stream said {announced!r}")

    def _text_event(self, kind: str, event: dict[str, Any]) -> None:
        is_delta = kind in _DELTAS
        stream = _DELTAS[kind] if is_delta else _DONES[kind][1]
        item = self._item_for(event)
        if item is None:
            return
        slot = ("arguments", 0)
        if stream.index is not None:
            number = event.get(stream.index)
            slot = (stream.index, number if isinstance(number, int) else -1)
            if slot not in item.open_parts:
                self._fail(
                    PARTS,
                    f"{kind} for {stream.index} {number!r} of {item.id!r} is outside an open part",
                )
        if slot in item.part_values:
            self._fail(TEXT, f"{kind} arrived after the {stream.done} of the same value")
            return
        if is_delta:
            delta = event.get("delta")
            item.deltas.setdefault(slot, []).append(delta if isinstance(delta, str) else "")
            return
        value = event.get(stream.field)
        joined = "".join(item.deltas.get(slot, []))
        if slot in item.deltas and value != joined:
            self._fail(TEXT, f"{kind} says {value!r}, the deltas say {joined!r}")
        item.part_values[slot] = value if isinstance(value, str) else ""

    # --- the end ----------------------------------------------------------------------------

    def finish(self) -> list[Violation]:
        """Checks what only the whole stream can show; returns every violation."""
        self._position = -1
        if not self._opening:
            self._fail(LIFECYCLE, "the stream has no response.created event")
        if self._terminal is None:
            self._fail(
                LIFECYCLE,
                "the stream ended without a terminal event "
                "(response.completed, response.failed or response.incomplete)",
            )
            return self.violations
        for item in self._items:
            if not item.closed:
                self._fail(ITEMS, f"item {item.id!r} was added but never done")
        response = self._terminal.get("response") or {}
        self._check_incomplete(response)
        output = response.get("output")
        if output != self._closed_items:
            self._fail(
                OUTPUT,
                "the terminal response's output differs from the streamed "
                f"items: {first_difference(self._closed_items, output)}",
            )
        return self.violations

    def _check_incomplete(self, response: dict[str, Any]) -> None:
        statuses = [i.get("status") for i in self._closed_items if isinstance(i, dict)]
        if "incomplete" in statuses[:-1]:
            self._fail(ITEMS, "an incomplete item is not the last item")
        if statuses and statuses[-1] == "incomplete" and response.get("status") != "incomplete":
            self._fail(
                ITEMS, f"the last item is incomplete but the response is {response.get('status')!r}"
            )


def _part_value(part: Any) -> str | None:
    if not isinstance(part, dict):
        return None
    name = _PART_VALUE.get(str(part.get("type")), "text")
    value = part.get(name)
    return value if isinstance(value, str) else None


def first_difference(expected: Any, actual: Any, path: str = "$") -> str:
    """Where two JSON values first differ, as `$.path: expected X, got Y`."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                return f"{path}.{key}: missing"
            if key not in expected:
                return f"{path}.{key}: unexpected"
            if expected[key] != actual[key]:
                return first_difference(expected[key], actual[key], f"{path}.{key}")
    if isinstance(expected, list) and isinstance(actual, list):
        for index, (a, b) in enumerate(zip(expected, actual, strict=False)):
            if a != b:
                return first_difference(a, b, f"{path}[{index}]")
        if len(expected) != len(actual):
            return f"{path}: {len(expected)} items expected, got {len(actual)}"
    return f"{path}: expected {_short(expected)}, got {_short(actual)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def check(events: list[dict[str, Any]]) -> Grammar:
    """Runs the grammar over a whole stream."""
    grammar = Grammar()
    for event in events:
        grammar.feed(event)
    grammar.finish()
    return grammar
