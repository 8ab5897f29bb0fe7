"""Benchmarks behind ``rtrl bench``: timings are printed, never asserted.

Tables (each a module with ``run(quick) -> list[dict]``, ``header() -> str``,
``format_table(rows) -> str`` and ``LEGEND``):

* ``fully_recurrent`` ("rtrl")   -- exact RTRL against the same-shape sgemm and a NumPy RTRL;
* ``cells``           ("cells")  -- exact RTRL for RecurrentNet against the same-shape sgemm;
* ``layers``          ("layers") -- rtrl.nn LSTM/GRU (and LSTMCell) against torch.nn on the CPU.

``machine`` describes the machine and measures how busy it was; ``numpy_rtrl`` holds the NumPy
baseline. ``report()`` runs several tables and prints them after one machine header.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

__all__ = ["TABLES", "report"]

TABLES = {  # name -> (module, title)
    "rtrl": ("fully_recurrent", "exact RTRL, fully recurrent network, CPU"),
    "cells": ("cells", "exact RTRL, RecurrentNet (RNN/LSTM/GRU + readout), CPU"),
    "layers": ("layers", "LSTM/GRU layers and LSTMCell against torch.nn, CPU"),
}


def report(tables: Sequence[str] = tuple(TABLES), *, quick: bool = False, json_path: Optional[str] = None,
           progress: Optional[Callable[[str], None]] = None, out=None) -> dict[str, Any]:
    """Prints the machine header, then each table of ``tables`` with its mode, duration, the other
    processes' CPU share meanwhile and its legend; writes everything (all rows, all samples) as JSON
    to ``json_path`` if given. Returns that JSON payload."""
    from importlib import import_module

    from .machine import CpuUse, format_header, machine_info

    out = out or sys.stdout
    if progress is None:
        def progress(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"unknown tables {unknown}; choose from {sorted(TABLES)}")
    info = machine_info()
    print(format_header(info), file=out, flush=True)
    payload: dict[str, Any] = {"benchmark": "rtrl bench", "quick": quick,
                               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
                               "header": format_header(info), "tables": {}}
    for name in tables:
        module_name, title = TABLES[name]
        module = import_module(f".{module_name}", __name__)
        started, cpu_use = time.perf_counter(), CpuUse().start()
        rows = module.run(quick, progress=progress)
        elapsed, other = time.perf_counter() - started, cpu_use.stop()
        repeats = rows[0]["repeats"] if rows else 0
        print(f"\n== {name}: {title} ==", file=out)
        print(f"mode: {'quick' if quick else 'full'}, {repeats} interleaved repeats, {elapsed:.0f} s; "
              f"other processes used {'?' if other is None else f'{100 * other:.0f}%'} of the CPUs "
              f"meanwhile\n", file=out)
        print(module.format_table(rows), file=out)
        print(file=out)
        print(module.LEGEND, file=out, flush=True)
        payload["tables"][name] = {"title": title, "elapsed_s": elapsed, "other_cpu_share": other,
                                   "rows": rows}
    if json_path:
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nJSON written to {json_path}", file=out)
    return payload
