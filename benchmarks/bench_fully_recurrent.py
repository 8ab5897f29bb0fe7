#!/usr/bin/env python
"""Speed of exact RTRL on the CPU for the fully recurrent network, against the same-shape sgemm and
a NumPy RTRL: the ``rtrl`` table of ``rtrl bench`` (the code is ``rtrl.bench.fully_recurrent``).

Usage::

    python benchmarks/bench_fully_recurrent.py [--quick] [--json FILE] [--threads N]

``--threads N`` sets ``OMP_NUM_THREADS`` before rtrl and NumPy load (``rtrl bench`` cannot: it runs
after rtrl is imported).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

TABLE = "rtrl"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats (< 1 minute)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="OpenMP threads (sets OMP_NUM_THREADS before rtrl and NumPy load)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads: expected a positive integer")
        if "rtrl" in sys.modules or "numpy" in sys.modules:
            print("warning: rtrl/numpy already imported; --threads may not take effect", file=sys.stderr)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from rtrl.bench import report  # after OMP_NUM_THREADS is set

    report((TABLE,), quick=args.quick, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
