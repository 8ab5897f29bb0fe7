"""Benchmarks behind ``rtrl bench``: timings are printed, never asserted.

Tables (each a module with ``run(quick) -> list[dict]``, ``header() -> str``,
``format_table(rows) -> str`` and ``LEGEND``):

* ``fully_recurrent`` ("rtrl")   -- exact RTRL against the same-shape sgemm and the NumPy, torch-ops
                                   and JAX RTRLs;
* ``cells``           ("cells")  -- exact RTRL for RecurrentNet against the same-shape sgemm;
* ``stacked``         ("stacked") -- exact RTRL for stacked RecurrentNets against sgemms of the same shapes;
* ``layers``          ("layers") -- rtrl.nn LSTM/GRU (and LSTMCell) against torch.nn on the CPU;
* ``memory``          ("memory") -- peak RSS of RTRL (and full-sequence BPTT) at T = 2 000 and 50 000;
* ``approximate``     ("approximate") -- the learners that scale against exact RTRL, BPTT and one
                                   memory pass over SnAp-1's traces.

``machine`` describes the machine and measures how busy it was; ``device`` picks where rtrl runs;
``numpy_rtrl``, ``torch_rtrl`` and ``jax_rtrl`` hold the reference RTRLs; ``plot`` draws the rtrl
table. ``report()`` runs several tables and prints them after one machine header.
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
    "stacked": ("stacked", "exact RTRL, stacked RecurrentNet (LSTM/GRU, 2-3 layers + readout), CPU"),
    "layers": ("layers", "LSTM/GRU layers and LSTMCell against torch.nn, CPU"),
    "memory": ("memory", "peak memory of RTRL against the sequence length"),
    "approximate": ("approximate", "SnAp-1, e-prop, RFLO, UORO, KF-RTRL against RTRL, BPTT and a memory pass, CPU"),
}


def report(tables: Sequence[str] = tuple(TABLES), *, quick: bool = False, json_path: Optional[str] = None,
           device: str = "auto", plot_path: Optional[str] = None,
           progress: Optional[Callable[[str], None]] = None, out=None) -> dict[str, Any]:
    """Prints the machine header, then each table of ``tables`` with its mode, duration, the other
    processes' CPU share meanwhile and its legend; writes everything (all rows, all samples) as JSON
    to ``json_path`` if given, and the PNG of the rtrl table to ``plot_path`` if given. Returns that
    JSON payload.

    ``device`` ("auto" | "cpu" | "cuda") is where rtrl runs; the references run on the CPU. Raises
    ValueError for an unknown table, or a plot without the rtrl table; RuntimeError for "cuda" without
    a usable device, or a plot without matplotlib -- all before anything is measured."""
    from importlib import import_module

    from . import device as _device
    from .machine import CpuUse, format_header, machine_info

    out = out or sys.stdout
    if progress is None:
        def progress(message: str) -> None:
            print(message, file=sys.stderr, flush=True)

    unknown = [t for t in tables if t not in TABLES]
    if unknown:
        raise ValueError(f"unknown tables {unknown}; choose from {sorted(TABLES)}")
    if plot_path is not None:
        from .plot import matplotlib_missing

        if "rtrl" not in tables:
            raise ValueError("--plot draws the rtrl table: run it too (no --only, or --only rtrl)")
        if matplotlib_missing():
            raise RuntimeError(f"--plot: {matplotlib_missing()}")
    ran_on = _device.resolve(device)
    info = machine_info()
    head = (f"{format_header(info)}\ndevice   : rtrl on {ran_on} (--device {device}); sgemm, NumPy, torch "
            f"and JAX on the CPU")
    print(head, file=out, flush=True)
    payload: dict[str, Any] = {"benchmark": "rtrl bench", "quick": quick, "device": ran_on,
                               "device_asked": device,
                               "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "machine": info,
                               "header": head, "tables": {}}
    for name in tables:
        module_name, title = TABLES[name]
        module = import_module(f".{module_name}", __name__)
        started, cpu_use = time.perf_counter(), CpuUse().start()
        rows = module.run(quick, device=ran_on, progress=progress)
        elapsed, other = time.perf_counter() - started, cpu_use.stop()
        repeats = rows[0]["repeats"] if rows else 0
        print(f"\n== {name}: {title} ==", file=out)
        how = getattr(module, "METHOD", f"{repeats} interleaved repeats")
        print(f"mode: {'quick' if quick else 'full'}, {how}, {elapsed:.0f} s; "
              f"other processes used {'?' if other is None else f'{100 * other:.0f}%'} of the CPUs "
              f"meanwhile\n", file=out)
        print(module.format_table(rows), file=out)
        print(file=out)
        print(module.LEGEND, file=out, flush=True)
        payload["tables"][name] = {"title": title, "elapsed_s": elapsed, "other_cpu_share": other,
                                   "rows": rows}
    if plot_path is not None:
        from .plot import plot_rtrl

        payload["plot"] = plot_rtrl(payload["tables"]["rtrl"]["rows"], plot_path)
        print(f"\nplot written to {plot_path}", file=out)
    if json_path:
        Path(json_path).write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
        print(f"\nJSON written to {json_path}", file=out)
    return payload
