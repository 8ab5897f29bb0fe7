"""The ``rtrl`` command: ``rtrl info``, ``rtrl demo [TASK]``, ``rtrl bench``."""

from __future__ import annotations

import argparse
import sys
from typing import Sequence


def _info(args: argparse.Namespace) -> int:
    from . import info

    if args.memory:
        return _memory(args)
    d = info()
    cpu, cuda = d["cpu"], d["cuda"]
    print(f"rtrl {d['version']}")
    others = [isa for isa in cpu["isas"] if isa != cpu["isa"]]
    print(f"CPU:  {cpu['simd']} ({cpu['isa']} build{'; also here: ' + ', '.join(others) if others else ''}), "
          f"{cpu['threads']} OpenMP threads")
    print(f"BLAS: {cpu['blas']} (core {cpu['blas_core']})")
    if cpu["sanitizers"]:
        print(f"Sanitizers: {cpu['sanitizers']} (a test build: slow, and its memory figures are ASan's)")
    if cuda["available"]:
        print(f"CUDA: available: {', '.join(cuda['devices'])}")
    else:
        print(f"CUDA: {'built' if cuda['built'] else 'not built'}, not available: {cuda['reason']}")
    if "architectures" in cuda:
        print(f"CUDA build: {', '.join(cuda['architectures']) or 'architectures not named'}"
              f"{'; RTRL_CUDA_SYNC_CHECK on' if cuda['sync_check'] else ''}")
    return 0


def _memory(args: argparse.Namespace) -> int:
    from .memory import available_bytes, estimate, format_bytes

    if args.inputs is None or args.hidden is None:
        print("rtrl info --memory: give --inputs and --hidden (units of the fully recurrent network)",
              file=sys.stderr)
        return 2
    try:
        need = estimate(args.memory, args.inputs, args.hidden, args.outputs, batch_size=args.batch_size,
                        dtype=args.dtype, learner=args.learner, optimizer=args.optimizer, steps=args.steps,
                        device=args.device)
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"rtrl info --memory: {exc}", file=sys.stderr)
        return 2
    chunk = f", {args.steps} steps per chunk" if args.learner == "bptt" else ""
    print(f"{args.learner.upper()} on {args.memory}: inputs {args.inputs}, hidden {args.hidden}, outputs "
          f"{args.outputs if args.outputs is not None else 'all units'}, batch {args.batch_size}, {args.dtype}, "
          f"optimizer {args.optimizer}{chunk}")
    for part, size in need.items():
        if part in ("learner", "total"):
            continue
        print(f"  {part:<16} {format_bytes(size):>12}")
    print(f"  {'held':<16} {format_bytes(need['learner']):>12}  (between calls; independent of the sequence "
          f"length{' for RTRL' if args.learner == 'rtrl' else ''})")
    print(f"  {'total':<16} {format_bytes(need['total']):>12}")
    free = available_bytes(args.device)
    if free is not None:
        verdict = "fits" if need["total"] <= free else "does NOT fit"
        print(f"  available        {format_bytes(free):>12}  ({verdict})")
    return 0


def _at_least_one(text: str) -> int:
    """argparse type of ``--seeds``: an integer of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1 (networks per task), got {text!r}")
    return value


def _output_file(text: str) -> str:
    """argparse type of the options that name a file written at the end of a run (``--plot``,
    ``--json``): refused at once, before the run, when the file could not be written there."""
    from .demos.plotting import check_output_path

    try:
        return check_output_path(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _demo(args: argparse.Namespace) -> int:
    from .demos import DEFAULT, DEMOS

    task = args.task or DEFAULT
    if task not in DEMOS:
        print(f"rtrl demo: unknown task {task!r}; choose from {', '.join(sorted(DEMOS))}", file=sys.stderr)
        return 2
    plot_path = None if args.no_plot else (args.plot or f"rtrl-demo-{task}.png")
    if plot_path is not None and args.plot is None:  # the default file; --plot FILE was checked on parsing
        from .demos.plotting import check_output_path

        try:
            check_output_path(plot_path, "the default plot")
        except ValueError as exc:
            print(f"rtrl demo: {exc}; give --plot FILE or --no-plot", file=sys.stderr)
            return 2
    options = {"quick": args.quick, "progress": not args.no_progress, "plot_path": plot_path}
    if args.seeds is not None:
        options["seeds"] = args.seeds
    DEMOS[task].main(**options)
    return 0


def _bench(args: argparse.Namespace) -> int:
    from .bench import TABLES, report
    from .bench.plot import matplotlib_missing

    tables = tuple(TABLES) if args.only is None else (args.only,)
    plot = args.plot
    if plot is None and not args.no_plot and "rtrl" in tables and not matplotlib_missing():
        plot = "rtrl-bench.png"
    try:
        report(tables, quick=args.quick, json_path=args.json, device=args.device, plot_path=plot)
    except (ValueError, RuntimeError) as exc:
        print(f"rtrl bench: {exc}", file=sys.stderr)
        return 2
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the ``rtrl`` command with ``argv`` (default: ``sys.argv[1:]``) and returns its exit status.

    Without a command it prints the help on stderr and returns 2, argparse's status for a usage
    error; ``rtrl --help`` prints it on stdout and exits with 0.
    """
    from . import __version__

    parser = argparse.ArgumentParser(prog="rtrl", description="Exact online learning for recurrent networks.")
    parser.add_argument("--version", action="version", version=f"rtrl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="{info,demo,bench}")
    info = sub.add_parser("info", help="the build, the CPU/BLAS/threads and the CUDA status; with --memory, "
                                       "what a learner will need")
    info.add_argument("--memory", choices=("fully_recurrent", "rnn", "lstm", "gru", "elstm"),
                      help="print the memory a learner on this model will need, before allocating it")
    info.add_argument("--inputs", type=int, help="inputs (with --memory)")
    info.add_argument("--hidden", type=int, help="hidden units, or the fully recurrent network's units")
    info.add_argument("--outputs", type=int, help="outputs (readout size; visible units)")
    info.add_argument("--batch-size", type=int, default=1, help="streams (default 1)")
    info.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    info.add_argument("--learner", choices=("rtrl", "bptt", "snap", "eprop", "rflo", "uoro", "kf"), default="rtrl")
    info.add_argument("--optimizer", choices=("none", "sgd", "momentum", "adam"), default="sgd")
    info.add_argument("--steps", type=int, help="BPTT: steps per chunk (its memory grows with them)")
    info.add_argument("--device", choices=("cpu", "cuda", "auto"), default="cpu")
    info.set_defaults(func=_info)
    demo = sub.add_parser("demo", help="run a demo (default: the Williams & Zipser 1989 tasks and oscillators)",
                          formatter_class=argparse.RawDescriptionHelpFormatter,
                          description="run a demo; TASK is one of:\n"
                          "  wz1989       the Williams & Zipser 1989 tasks, then the oscillators (the default)\n"
                          "  oscillators  the oscillators alone\n"
                          "  forecast     Mackey-Glass next-step prediction: RTRL against truncated BPTT (LSTM)\n"
                          "  reber        the embedded Reber grammar: an LSTM learning online with RTRL\n"
                          "  text         a character-level GRU trained by truncated BPTT on standard-library\n"
                          "               sources, then sampled\n"
                          "  online       delayed recall with a curriculum: RTRL, SnAp-1, e-prop, UORO, KF-RTRL\n"
                          "               and truncated BPTT side by side")
    demo.add_argument("task", nargs="?", metavar="TASK", help="demo to run (default: wz1989)")
    demo.add_argument("--seeds", type=_at_least_one, default=None, metavar="N",
                      help="networks per task, at least 1, with or without --quick (default: the demo's own: "
                           "wz1989 and oscillators 5, or 2 with --quick; reber 3, or 1 with --quick; forecast 1); "
                           "text trains one network and does not use it")
    demo.add_argument("--quick", action="store_true", help="a fast, smaller run")
    figure = demo.add_mutually_exclusive_group()
    figure.add_argument("--plot", metavar="FILE", type=_output_file,
                        help="write the learning curves to this PNG (default: rtrl-demo-TASK.png; needs "
                             "matplotlib); its directory must exist")
    figure.add_argument("--no-plot", action="store_true", help="draw no figure at all")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar (shown with tqdm on a terminal)")
    demo.set_defaults(func=_demo)
    bench = sub.add_parser("bench", help="time RTRL against the GEMM rate and NumPy/torch/JAX RTRLs, the "
                                         "LSTM/GRU layers against PyTorch (when installed), and RTRL's memory")
    bench.add_argument("--quick", action="store_true", help="fewer sizes and repeats (a few minutes)")
    bench.add_argument("--json", metavar="FILE", type=_output_file,
                       help="also write the results (all rows) as JSON")
    bench.add_argument("--only", choices=("rtrl", "cells", "stacked", "layers", "memory", "approximate"),
                       help="run one table: rtrl (fully recurrent RTRL vs sgemm and NumPy/torch/JAX RTRLs), "
                            "cells (RecurrentNet RTRL vs sgemm), stacked (stacked RecurrentNet RTRL vs "
                            "sgemms), layers (LSTM/GRU vs torch), memory "
                            "(peak RSS of RTRL at T = 2000 and 50000) or approximate (SnAp-1, e-prop, RFLO, "
                            "UORO, KF-RTRL vs RTRL, BPTT and a memory pass)")
    bench.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                       help="where rtrl runs (default auto: CUDA when available); the references run on "
                            "the CPU; cuda without a usable device is an error")
    figure = bench.add_mutually_exclusive_group()
    figure.add_argument("--plot", metavar="FILE", type=_output_file,
                        help="draw the rtrl table as a PNG, time per step against n (default with matplotlib "
                             "installed: rtrl-bench.png); its directory must exist")
    figure.add_argument("--no-plot", action="store_true", help="write no figure")
    bench.set_defaults(func=_bench)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return 2
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
