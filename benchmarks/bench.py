#!/usr/bin/env python
"""The tables of ``rtrl bench`` (the code is ``rtrl.bench``), with ``--threads``.

Usage::

    python benchmarks/bench.py [--threads N] [any option of rtrl bench: --only, --quick, --json,
                               --device, --plot]

``--threads N`` sets ``OMP_NUM_THREADS`` before rtrl, NumPy and torch load (``rtrl bench`` cannot: it
runs after rtrl is imported); everything else goes to ``rtrl bench`` as is.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], add_help=False)
    parser.add_argument("--threads", type=int, metavar="N",
                        help="OpenMP threads (sets OMP_NUM_THREADS before rtrl, NumPy and torch load)")
    args, rest = parser.parse_known_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads: expected a positive integer")
        if "rtrl" in sys.modules or "numpy" in sys.modules or "torch" in sys.modules:
            print("warning: rtrl/numpy/torch already imported; --threads may not take effect",
                  file=sys.stderr)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from rtrl.cli import main as rtrl_main  # after OMP_NUM_THREADS is set

    return rtrl_main(["bench", *rest])


if __name__ == "__main__":
    sys.exit(main())
