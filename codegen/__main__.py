"""`python -m codegen [--check]` regenerates `generated/`.

`python -m codegen assemble --sources DIR` rebuilds `spec/` from the upstream specs.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from . import assemble, generate


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if generated/ is stale")
    sub = parser.add_subparsers(dest="command")
    build = sub.add_parser("assemble", help="rebuild spec/ from upstream spec sources")
    build.add_argument("--sources", type=Path, default=Path("../shared/spec-sources"))
    args = parser.parse_args(argv)

    if args.command == "assemble":
        assemble.assemble(args.sources)
        print(f"spec/ assembled from {args.sources}; run `python -m codegen` next")
        return 0
    files = generate.render()
    if args.check:
        stale = generate.stale(files)
        if stale:
            print("generated/ is stale against spec/: " + ", ".join(stale))
            print("run `python -m codegen` and commit the result")
            return 1
        print("generated/ is up to date")
        return 0
    generate.write(files)
    print(f"wrote {len(files)} files to generated/")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
