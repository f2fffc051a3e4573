"""`python -m devinfra run` (what `make run` calls) and `python -m devinfra soak` (`make soak`)."""

from __future__ import annotations

import sys

if __name__ == "__main__":
    args = sys.argv[1:]
    if args[:1] == ["run"]:
        from devinfra.run import main
    elif args[:1] == ["soak"]:
        from devinfra.soak import main
    else:
        sys.exit("usage: python -m devinfra run | python -m devinfra soak [--help]")
    sys.exit(main(args[1:]))
