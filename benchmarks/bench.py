#!/usr/bin/env python
"""The tables of ``rtrl bench`` (the code is ``rtrl.bench``), with ``--threads``.

Usage::

    python benchmarks/bench.py [--only {rtrl,cells,layers,memory}] [--quick] [--json FILE] [--threads N]
                               [--device {auto,cpu,cuda}] [--plot FILE]

``--threads N`` sets ``OMP_NUM_THREADS`` before rtrl, NumPy and torch load (``rtrl bench`` cannot: it
runs after rtrl is imported).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", choices=("rtrl", "cells", "layers", "memory"), help="run one table")
    parser.add_argument("--quick", action="store_true", help="fewer sizes and repeats")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="OpenMP threads (sets OMP_NUM_THREADS before rtrl, NumPy and torch load)")
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="where rtrl runs")
    parser.add_argument("--plot", metavar="FILE", help="also write a PNG of the rtrl table")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads: expected a positive integer")
        if "rtrl" in sys.modules or "numpy" in sys.modules or "torch" in sys.modules:
            print("warning: rtrl/numpy/torch already imported; --threads may not take effect",
                  file=sys.stderr)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from rtrl.bench import TABLES, report  # after OMP_NUM_THREADS is set

    try:
        report(tuple(TABLES) if args.only is None else (args.only,), quick=args.quick, json_path=args.json,
               device=args.device, plot_path=args.plot)
    except (ValueError, RuntimeError) as exc:
        print(f"bench.py: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
