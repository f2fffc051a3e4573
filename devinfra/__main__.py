"""`python -m devinfra run` (what `make run` calls)."""

from __future__ import annotations

import sys

from devinfra.run import main

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] != ["run"]:
        sys.exit("usage: python -m devinfra run")
    sys.exit(main(args[1:]))
