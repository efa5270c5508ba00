"""`openresponses conformance`: check any Open Responses endpoint from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from openresponses.conformance import report, runner
from openresponses.conformance.checks import fuzz
from openresponses.conformance.wire import Dialect, Target

EPILOG = """\
examples:
  openresponses conformance --base-url http://127.0.0.1:8080/v1 --model openai@gpt-4.1-mini
  openresponses conformance --base-url https://api.openai.com/v1 --api-key "$OPENAI_API_KEY" \\
      --model gpt-4.1-mini --dialect openai --only 'stream.*' --junit conformance.xml
The Open Responses rule book is run as an Open Responses client would run it, without an
OpenResponses-Version header; --version-header sends one, for servers with a strict mode behind it.
exit status: 0 when no selected check failed (skips and advisory warnings allowed), 1 when any
failed, 2 on bad usage (--fuzz without the conformance extra included).
"""


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "conformance",
        help="check an endpoint against the Open Responses spec",
        description="Run the conformance checks against an Open Responses / OpenAI "
        "Responses endpoint and report where it departs from the spec.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--base-url", required=True, help="the API base, e.g. http://host:8080/v1")
    parser.add_argument("--api-key", default=None, help="sent as Authorization: Bearer KEY")
    parser.add_argument(
        "--model", default="gpt-4.1-mini", help="model to ask (default gpt-4.1-mini)"
    )
    parser.add_argument(
        "--header", action="append", default=[], metavar="K:V", help="extra header (repeatable)"
    )
    parser.add_argument("--report", type=Path, default=None, help="write a JSON report here")
    parser.add_argument("--junit", type=Path, default=None, help="write JUnit XML here")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="PATTERN",
        help="run checks whose id matches this glob, e.g. 'stream.*' or 'openai/errors.*' "
        "(repeatable)",
    )
    parser.add_argument(
        "--fuzz",
        action="store_true",
        help=f"also fuzz every operation (schemathesis: {fuzz.INSTALL})",
    )
    parser.add_argument(
        "--fuzz-examples",
        type=int,
        default=fuzz.EXAMPLES,
        metavar="N",
        help=f"with --fuzz: cases per operation, valid and invalid each (default {fuzz.EXAMPLES})",
    )
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="seconds per request (default 60)"
    )
    parser.add_argument(
        "--dialect",
        choices=["both", *(d.value for d in Dialect)],
        default="both",
        help="rule book: OpenAI's, the Open Responses spec's, or both (default)",
    )
    parser.add_argument(
        "--version-header",
        action="store_true",
        help="send OpenResponses-Version with the Open Responses rule book's requests "
        "(Open Responses clients send none)",
    )
    parser.add_argument("--list", action="store_true", help="list the selected checks and exit")
    parser.set_defaults(run=main)


def _headers(pairs: list[str]) -> dict[str, str]:
    headers = {}
    for pair in pairs:
        name, sep, value = pair.partition(":")
        if not sep or not name.strip():
            raise ValueError(f"--header wants NAME:VALUE, got {pair!r}")
        headers[name.strip()] = value.strip()
    return headers


class _Progress:
    """A progress line rewritten in place on a terminal; one line per result otherwise."""

    def __init__(self) -> None:
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int, ident: str, result: runner.Result | None) -> None:
        if result is None:
            if self.tty:
                sys.stderr.write(f"\r\x1b[K[{done + 1}/{total}] {ident} …")
                sys.stderr.flush()
            return
        if not self.tty:
            sys.stderr.write(f"[{done}/{total}] {ident}: {result.status}\n")
        elif done == total:
            sys.stderr.write("\r\x1b[K")
        sys.stderr.flush()


def main(args: argparse.Namespace) -> int:
    try:
        headers = _headers(args.header)
    except ValueError as exc:
        print(f"openresponses conformance: {exc}", file=sys.stderr)
        return 2
    if args.fuzz_examples < 1:
        print("openresponses conformance: --fuzz-examples wants a positive number", file=sys.stderr)
        return 2
    dialects = list(Dialect) if args.dialect == "both" else [Dialect(args.dialect)]
    selected = runner.select(dialects, args.only)
    if not selected:
        print("openresponses conformance: no check matches --only", file=sys.stderr)
        return 2
    if args.list:
        for check, dialect in selected:
            print(f"{dialect.value}/{check.id:<40} {check.title}")
        return 0
    if args.fuzz and (absent := fuzz.missing()):
        print(
            f"openresponses conformance: --fuzz needs {absent}, which the conformance extra "
            f"installs: {fuzz.INSTALL}",
            file=sys.stderr,
        )
        return 2
    target = Target(
        args.base_url, args.model, args.api_key, headers, args.timeout, args.version_header
    )
    print(
        f"openresponses conformance: {len(selected)} checks against {target.base_url} "
        f"(model {target.model})",
        file=sys.stderr,
    )
    results = runner.run(
        target, selected, fuzz_examples=args.fuzz_examples if args.fuzz else 0, progress=_Progress()
    )
    print(report.table(results))
    if args.report:
        report.write_json(args.report, target, results)
    if args.junit:
        report.write_junit(args.junit, target, results)
    return 1 if any(result.status == runner.FAIL for result in results) else 0
