"""The ``rtrl`` command: ``rtrl info``, ``rtrl demo [TASK]``, ``rtrl bench``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _info(_: argparse.Namespace) -> int:
    from . import info

    d = info()
    cpu, cuda = d["cpu"], d["cuda"]
    print(f"rtrl {d['version']}")
    print(f"CPU:  {cpu['simd']} (-march={cpu['arch'] or 'default'}), {cpu['threads']} OpenMP threads")
    print(f"BLAS: {cpu['blas']} (core {cpu['blas_core']})")
    if cuda["available"]:
        print(f"CUDA: available: {', '.join(cuda['devices'])}")
    else:
        print(f"CUDA: {'built' if cuda['built'] else 'not built'}, not available: {cuda['reason']}")
    return 0


def _demo(args: argparse.Namespace) -> int:
    from .demos import DEFAULT, DEMOS

    task = args.task or DEFAULT
    if task not in DEMOS:
        print(f"rtrl demo: unknown task {task!r}; choose from {', '.join(sorted(DEMOS))}", file=sys.stderr)
        return 2
    DEMOS[task].main(seeds=args.seeds, quick=args.quick)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import TABLES, report

    try:
        report(tuple(TABLES) if args.only is None else (args.only,), quick=args.quick, json_path=args.json,
               device=args.device, plot_path=args.plot)
    except (ValueError, RuntimeError) as exc:
        print(f"rtrl bench: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rtrl", description="Exact online learning for recurrent networks.")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="the build, the CPU/BLAS/threads and the CUDA status").set_defaults(func=_info)
    demo = sub.add_parser("demo", help="run a demo (default: the Williams & Zipser 1989 tasks and oscillators)")
    demo.add_argument("task", nargs="?", help="demo to run")
    demo.add_argument("--seeds", type=int, default=5, help="networks per task (default 5)")
    demo.add_argument("--quick", action="store_true", help="a fast, smaller run")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="time RTRL against the GEMM rate and NumPy/torch/JAX RTRLs, the "
                                         "LSTM/GRU layers against PyTorch (when installed), and RTRL's memory")
    bench.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes)")
    bench.add_argument("--json", metavar="FILE", help="also write the results (all rows) as JSON")
    bench.add_argument("--only", choices=("rtrl", "cells", "layers", "memory"),
                       help="run one table: rtrl (fully recurrent RTRL vs sgemm and NumPy/torch/JAX RTRLs), "
                            "cells (RecurrentNet RTRL vs sgemm), layers (LSTM/GRU vs torch) or memory "
                            "(peak RSS of RTRL at T = 2000 and 50000)")
    bench.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="where rtrl runs (default auto: CUDA when available); the references run on "
                            "the CPU; cuda without a usable device is an error")
    bench.add_argument("--plot", metavar="FILE",
                       help="also draw the rtrl table as a PNG (time per step against n; needs matplotlib)")
    bench.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
