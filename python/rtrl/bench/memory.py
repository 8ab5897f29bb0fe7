"""Memory of RTRL against the sequence length: the ``memory`` table of ``rtrl bench``.

RTRL keeps only the current state and sensitivities, so its memory does not depend on how long it
has been running. For each case (a model and a learner) and each of two sequence lengths T (2 000 and
50 000 steps), a fresh Python process (one OpenMP thread: this table is about memory, and a single thread
cannot stall at barriers on a busy machine) builds the model and the learner, runs T steps, and reports its
peak resident set size (``VmHWM`` from /proc/self/status, else ``ru_maxrss``), its peak before the
run (after the imports and the set-up) and the learner's ``memory_bytes()`` where it has one.

RTRL is fed from a generator in chunks of ``CHUNK`` steps (``learner.run`` per chunk), so the input
does not grow with T either. Full-sequence BPTT, for contrast, needs the whole sequence at once and
stores every step's activations: its peak grows with T.

``run(quick) -> list[dict]``, ``format_table(rows) -> str`` and ``LEGEND``; ``rtrl bench --only
memory`` prints them. ``python -m rtrl.bench.memory SPEC`` is the child process (SPEC is JSON).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Sequence

from .machine import table_lines

__all__ = ["LEGEND", "chunks", "format_table", "measure", "peak_rss", "run"]

N_INPUTS = 8
LR = 1e-3
CHUNK = 500
METHOD = "each run in a fresh process"  # for report()'s mode line
STEPS = (2_000, 50_000)
# (model, size, batch, learner): FullyRecurrent(n) / RecurrentNet("lstm", H) with B streams
CASES = (("fully_recurrent", 32, 4, "rtrl"), ("lstm", 32, 1, "rtrl"),
         ("fully_recurrent", 32, 4, "bptt"), ("lstm", 32, 1, "bptt"))
QUICK_CASES = (("fully_recurrent", 16, 4, "rtrl"), ("lstm", 16, 1, "rtrl"),
               ("fully_recurrent", 16, 4, "bptt"), ("lstm", 16, 1, "bptt"))


def peak_rss() -> int:
    """This process's peak resident set size in bytes (VmHWM, else ru_maxrss)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    import resource

    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return maxrss if sys.platform == "darwin" else maxrss * 1024  # bytes on macOS, KiB elsewhere


def chunks(steps: int, batch: int, *, chunk: int = CHUNK, seed: int = 0) -> Iterator[tuple[Any, Any]]:
    """Inputs (t, B, I) uniform in [-1, 1] and targets (t, B, 1) uniform in [0, 1], float32, in
    pieces of at most ``chunk`` steps, ``steps`` in all, generated as they are asked for."""
    import numpy as np

    rng = np.random.default_rng(seed)
    for start in range(0, steps, chunk):
        t = min(chunk, steps - start)
        yield (rng.uniform(-1, 1, (t, batch, N_INPUTS)).astype(np.float32),
               rng.uniform(0, 1, (t, batch, 1)).astype(np.float32))


def _child(spec: dict[str, Any]) -> dict[str, Any]:
    """Runs one case in this process; returns the measurements."""
    import numpy as np

    import rtrl

    from .device import synchronize, to_device

    model, size, batch, learner_name = spec["model"], spec["size"], spec["batch"], spec["learner"]
    steps, device = spec["steps"], spec.get("device", "cpu")
    if model == "fully_recurrent":
        net = rtrl.FullyRecurrent(size, N_INPUTS, n_outputs=1, seed=0, device=device)
    else:
        net = rtrl.RecurrentNet(model, N_INPUTS, size, 1, seed=0, device=device)
    if learner_name == "rtrl":
        learner = rtrl.RTRL(net, lr=LR, batch_size=batch)
        list(chunks(1, batch))  # warm the generator's imports before the baseline
    else:
        learner = rtrl.BPTT(net, lr=LR, batch_size=batch)
    before = peak_rss()
    start = time.perf_counter()
    if learner_name == "rtrl":
        for X, D in chunks(steps, batch, chunk=spec.get("chunk", CHUNK)):
            learner.run(to_device(X, device), to_device(D, device))
    else:  # full-sequence BPTT: the whole sequence is one input
        X, D = (np.concatenate(a) for a in zip(*chunks(steps, batch)))
        learner.run(to_device(X, device), to_device(D, device))
    synchronize(device)
    seconds = time.perf_counter() - start
    memory_bytes = learner.memory_bytes() if hasattr(learner, "memory_bytes") else None
    return {"peak_rss": peak_rss(), "peak_rss_before_run": before, "memory_bytes": memory_bytes,
            "seconds": seconds}


def measure(model: str, size: int, batch: int, learner: str, steps: int, *, device: str = "cpu",
            chunk: int = CHUNK) -> dict[str, Any]:
    """Runs one case for ``steps`` steps in a fresh Python process; returns its measurements."""
    spec = {"model": model, "size": size, "batch": batch, "learner": learner, "steps": steps,
            "device": device, "chunk": chunk}
    env = dict(os.environ)
    package_root = str(Path(__file__).resolve().parents[2])  # where this rtrl package is imported from
    env["PYTHONPATH"] = os.pathsep.join(p for p in (package_root, env.get("PYTHONPATH")) if p)
    env["OMP_NUM_THREADS"] = "1"  # memory, not speed: one thread cannot stall on a busy machine
    proc = subprocess.run([sys.executable, "-m", "rtrl.bench.memory", json.dumps(spec)], env=env,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"memory benchmark child failed for {spec}:\n{proc.stderr.strip()}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run(quick: bool = False, *, cases: Optional[Sequence[tuple]] = None,
        steps: Optional[Sequence[int]] = None, chunk: int = CHUNK, device: str = "cpu",
        progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """One row per case (model, size, batch, learner): peak RSS after ``steps[0]`` and after
    ``steps[-1]`` steps (default ``STEPS``; each in a fresh process), their ratio, and the learner's
    ``memory_bytes()``. ``quick`` uses smaller models."""
    short, long = (steps or STEPS)[0], (steps or STEPS)[-1]
    rows = []
    for model, size, batch, learner in cases or (QUICK_CASES if quick else CASES):
        results = {}
        for T in (short, long):
            if progress:
                progress(f"memory: {learner} {model} size={size} B={batch} T={T} ...")
            results[T] = measure(model, size, batch, learner, T, device=device, chunk=chunk)
        rows.append({
            "model": model, "size": size, "batch": batch, "learner": learner, "device": device,
            "feed": f"chunks of {chunk}" if learner == "rtrl" else "whole sequence",
            "steps": [short, long], "repeats": 1,
            "peak_rss_bytes": [results[T]["peak_rss"] for T in (short, long)],
            "run_adds_bytes": [results[T]["peak_rss"] - results[T]["peak_rss_before_run"]
                               for T in (short, long)],
            "rss_ratio": results[long]["peak_rss"] / results[short]["peak_rss"],
            "memory_bytes": results[long]["memory_bytes"],
            "seconds": [results[T]["seconds"] for T in (short, long)],
        })
    return rows


def _mib(value: Optional[float]) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def _columns(rows: list[dict]):
    short, long = rows[0]["steps"] if rows else STEPS
    return (
        ("learner", 7, lambda r: r["learner"].upper()),
        ("model", 15, lambda r: r["model"]),
        ("n|H", 4, lambda r: f'{r["size"]}'),
        ("B", 2, lambda r: f'{r["batch"]}'),
        ("feed", 15, lambda r: r["feed"]),
        (f"peak MiB T={short}", 18, lambda r: _mib(r["peak_rss_bytes"][0])),
        (f"T={long}", 9, lambda r: _mib(r["peak_rss_bytes"][1])),
        ("ratio", 5, lambda r: f'{r["rss_ratio"]:.2f}'),
        (f"run adds T={short}", 17, lambda r: _mib(r["run_adds_bytes"][0])),
        (f"T={long}", 9, lambda r: _mib(r["run_adds_bytes"][1])),
        ("state MiB", 9, lambda r: _mib(r["memory_bytes"])),
        (f"s T={long}", 9, lambda r: f'{r["seconds"][1]:.1f}'),
    )


def format_table(rows: list[dict]) -> str:
    """A fixed-width text table of ``run()``'s rows."""
    return "\n".join(table_lines(_columns(rows), rows))


LEGEND = f"""\
peak MiB: peak resident set size of a fresh Python process (interpreter, NumPy and rtrl included)
that built the model and learner and ran T steps on one OpenMP thread (real-time SGD lr={LR} for
RTRL, one update per sequence for BPTT; float32, I={N_INPUTS}, one mse output).
ratio: peak at the long T / peak at the short T.  run adds: peak after the run minus peak before it.
state MiB: learner.memory_bytes() (RTRL: parameters, state, sensitivities, gradient).
RTRL is fed from a generator in chunks (learner.run per chunk), so neither its state nor its input
grows with T; full-sequence BPTT keeps every step, so its peak grows.
s: seconds of the long run."""


if __name__ == "__main__":
    print(json.dumps(_child(json.loads(sys.argv[1]))))
