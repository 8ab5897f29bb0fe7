#!/usr/bin/env python
"""Speed of the fused LSTM/GRU layers and of one LSTMCell step against torch.nn on the CPU (torch on
as many threads as rtrl): the ``layers`` table of ``rtrl bench`` (the code is ``rtrl.bench.layers``).

Usage::

    python benchmarks/bench_layers.py [--quick] [--json FILE] [--threads N]

``--threads N`` sets ``OMP_NUM_THREADS`` before rtrl, NumPy and torch load (``rtrl bench`` cannot: it
runs after rtrl is imported).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Optional

TABLE = "layers"


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats (< 1 minute)")
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON to FILE")
    parser.add_argument("--threads", type=int, metavar="N",
                        help="OpenMP threads (sets OMP_NUM_THREADS before rtrl, NumPy and torch load)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error("--threads: expected a positive integer")
        if "rtrl" in sys.modules or "numpy" in sys.modules or "torch" in sys.modules:
            print("warning: rtrl/numpy/torch already imported; --threads may not take effect",
                  file=sys.stderr)
        os.environ["OMP_NUM_THREADS"] = str(args.threads)

    from rtrl.bench import report  # after OMP_NUM_THREADS is set

    report((TABLE,), quick=args.quick, json_path=args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
