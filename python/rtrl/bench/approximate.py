"""The online learners that scale (SnAp-1, e-prop, RFLO, UORO, KF-RTRL) against exact RTRL, BPTT's
forward-and-backward step, the forward step alone, memory passes, sgemm and the same learners written
with torch ops, for RecurrentNet (rnn, lstm, gru), I = 32, O = 4, float32, real-time Adam.

Each learner's per-step cost is bounded below by streaming its state once: for each learner the
reference ``pass`` is one read+write pass (``a *= 1``, NumPy) over the bytes of its own state (SnAp-1's,
e-prop's and RFLO's traces, UORO's parameter tangents, KF-RTRL's factors: ``rtrl.memory.estimate``),
timed interleaved with the learners on the same machine; ``x/pass`` = the learner's step time over it
(1.0 = the memory rate). ``BPTT`` is truncated BPTT's per-step time over chunks of 32 steps (forward,
backward and update), ``fwd`` the layer's forward alone (``rtrl.nn``, 32 steps per call), per step.
KF-RTRL's step is also set against one OpenBLAS sgemm of its product's shape (the layout it declares):
``KF/sgemm`` = the sgemm's time over KF-RTRL's step (1.0 = the GEMM rate). ``x torch/ours``: the same
learners written with torch ops (SnAp-1 and RFLO in torch_snap.py; UORO and KF-RTRL, on the rnn, in
torch_stochastic.py), their step time over ours. Cases whose learners would not fit in half the free
memory are left out.
"""

from __future__ import annotations

import gc
from typing import Any, Callable, Optional

from .device import run_timer
from .machine import measure_interleaved, per_call_timer, sgemm_timer, table_lines

N_INPUTS, N_OUTPUTS = 32, 4
LR = 1e-3
CELLS = ("rnn", "lstm", "gru")
HIDDEN = (64, 256, 1024)
BATCHES = (1, 16)
QUICK_HIDDEN = (64,)
QUICK_BATCHES = (1,)
KF_MAX_HIDDEN = 256
EXACT_MAX_HIDDEN = 64
FULL_SETTINGS = (3, 0.2, 0.05)  # repeats, min_time per measurement (s), settle between measurements (s)
QUICK_SETTINGS = (2, 0.05, 0.01)
LEARNERS = ("snap", "eprop", "rflo", "uoro", "kf", "rtrl", "bptt")
PASS_LEARNERS = ("snap", "eprop", "rflo", "uoro", "kf")  # each set against a pass over its own state
FORWARD_STEPS = 32


def _learners(cell: str, hidden: int, batch: int, device: str) -> dict[str, Any]:
    import rtrl

    def net():
        return rtrl.RecurrentNet(cell, N_INPUTS, hidden, N_OUTPUTS, seed=0, device=device)

    # the timed runs learn random targets for up to ~10^5 steps: a stochastic estimate's rare spike that
    # overflows an update is skipped (a skipped step costs what a step costs), not raised
    common = dict(batch_size=batch, on_nonfinite="skip")
    made = {"snap": rtrl.SnAp(net(), optimizer=rtrl.optim.Adam(LR), **common),
            "eprop": rtrl.EProp(net(), optimizer=rtrl.optim.Adam(LR), **common),
            "uoro": rtrl.UORO(net(), seed=0, optimizer=rtrl.optim.Adam(LR), **common),
            "bptt": rtrl.BPTT(net(), truncation=32, optimizer=rtrl.optim.Adam(LR), **common)}
    if cell == "rnn":
        made["rflo"] = rtrl.RFLO(net(), seed=0, optimizer=rtrl.optim.Adam(LR), **common)
    if cell in ("rnn", "lstm") and hidden <= KF_MAX_HIDDEN:
        made["kf"] = rtrl.KFRTRL(net(), seed=0, optimizer=rtrl.optim.Adam(LR), **common)
    if hidden <= EXACT_MAX_HIDDEN:
        made["rtrl"] = rtrl.RTRL(net(), optimizer=rtrl.optim.Adam(LR), **common)
    return made


def _fits(cell: str, hidden: int, batch: int) -> bool:
    import rtrl

    free = rtrl.memory.available_bytes("cpu")
    if free is None:
        return True
    need = sum(rtrl.memory.estimate(cell, N_INPUTS, hidden, N_OUTPUTS, batch_size=batch, learner=kind,
                                    optimizer="adam")["total"]
               for kind in ("snap", "eprop", "uoro") + (("kf",) if cell != "gru" and hidden <= KF_MAX_HIDDEN else ()))
    return need < free / 2


def _torch_trace_step(cell: str, learner: Any, batch: int, *, rule: str = "snap1", alpha: float = 1.0,
                      feedback: Any = None) -> Optional[Callable[[], Any]]:
    """One step of SnAp-1 / e-prop / RFLO written with torch ops (torch_snap.py) on the same network,
    or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    import numpy as np

    from .device import to_host
    from .torch_snap import TorchSnAp

    params = {k: to_host(v) for k, v in learner.model.parameters().items()}
    ref = TorchSnAp(cell, params, batch=batch, rule=rule, lr=LR, dtype="float32", alpha=alpha,
                    feedback=feedback, torch=torch)
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-1, 1, (batch, N_INPUTS)), dtype=torch.float32)
    d = torch.tensor(rng.uniform(-1, 1, (batch, N_OUTPUTS)), dtype=torch.float32)
    return lambda: ref.step(x, d)


def _torch_stochastic_step(kind: str, learner: Any, batch: int) -> Optional[Callable[[], Any]]:
    """One step of UORO or KF-RTRL written with torch ops (torch_stochastic.py, the rnn) on the same
    network and seed, or None without torch."""
    try:
        import torch
    except ImportError:
        return None
    import numpy as np

    from . import torch_stochastic
    from .device import to_host

    params = {k: to_host(v) for k, v in learner.model.parameters().items()}
    ref = getattr(torch_stochastic, kind)(params, learner.seed, batch=batch, lr=LR, dtype="float32", torch=torch)
    rng = np.random.default_rng(1)
    x = torch.tensor(rng.uniform(-1, 1, (batch, N_INPUTS)), dtype=torch.float32)
    d = torch.tensor(rng.uniform(-1, 1, (batch, N_OUTPUTS)), dtype=torch.float32)
    return lambda: ref.step(x, d)


def _forward_step(cell: str, hidden: int, batch: int, device: str) -> Callable[[], Any]:
    """The layer's forward alone over FORWARD_STEPS steps (rtrl.nn, the same cell kernels)."""
    import numpy as np

    import rtrl

    from .device import synchronize, to_device

    layer = {"rnn": rtrl.nn.RNN, "lstm": rtrl.nn.LSTM, "gru": rtrl.nn.GRU}[cell](
        N_INPUTS, hidden, device=device, dtype="float32", seed=0)
    x = to_device(np.random.default_rng(2).uniform(-1, 1, (FORWARD_STEPS, batch, N_INPUTS)).astype(np.float32),
                  device)

    def forward() -> None:
        layer(x)
        synchronize(device)
    return forward


def _ratio(top: str, bottom: str) -> Callable[[dict], str]:
    def fmt(r: dict) -> str:
        us = r["us_per_step"]
        return f"{us[top] / us[bottom]:.1f}" if top in us and bottom in us else "-"
    return fmt


def _over_pass(name: str) -> Callable[[dict], str]:
    return lambda r: f'{r["over_pass"][name]:.1f}' if name in r["over_pass"] else "-"


def measure_case(cell: str, hidden: int, batch: int, *, repeats: int, min_time: float, settle: float,
                 device: str = "cpu") -> dict[str, Any]:
    """One row: every learner's RecurrentNet run on ``device``, the forward step, the CPU memory passes
    over each learner's state, the sgemm of KF-RTRL's product and the torch-ops learners."""
    import numpy as np

    import rtrl

    learners = _learners(cell, hidden, batch, device)
    rng = np.random.default_rng(0)

    def make_data(steps: int) -> tuple[Any, Any]:
        return (rng.uniform(-1, 1, (steps, batch, N_INPUTS)).astype(np.float32),
                rng.uniform(-1, 1, (steps, batch, N_OUTPUTS)).astype(np.float32))

    threads = int(rtrl.info()["cpu"]["threads"])
    timers: dict[str, Callable[[int], float]] = {k: run_timer(v, make_data, device) for k, v in learners.items()}
    forward = _forward_step(cell, hidden, batch, device)
    timers["fwd"] = per_call_timer(forward)
    stream_bytes = {}
    for name in PASS_LEARNERS:
        if name in learners:
            stream_bytes[name] = int(rtrl.memory.estimate(cell, N_INPUTS, hidden, N_OUTPUTS, batch_size=batch,
                                                          learner=name)["sensitivities"])
    for size in sorted(set(stream_bytes.values())):
        block = np.ones(max(1, size // 4), dtype=np.float32)
        timers[f"pass{size}"] = per_call_timer(lambda block=block: np.multiply(block, 1.0, out=block))
    kf_shape = None
    if "kf" in learners:
        from .._backend import backend

        config = backend("cpu").core.CellNetConfig(cell, "tanh", N_INPUTS, hidden, N_OUTPUTS, batch, "mse", "mean")
        (kf_shape,) = config.layout("kf", True, 2)["products"]  # (M, K, N)
        M, K, N = kf_shape
        timers["sgemm"] = sgemm_timer(M, N, K, threads)
    torch_steps = {"torch_snap": _torch_trace_step(cell, learners["snap"], batch)}
    if "rflo" in learners:
        feedback = np.asarray(learners["rflo"].state_dict()["feedback"])
        torch_steps["torch_rflo"] = _torch_trace_step(cell, learners["rflo"], batch, rule="eprop",
                                                      feedback=feedback)
    if cell == "rnn":
        torch_steps["torch_uoro"] = _torch_stochastic_step("TorchUORO", learners["uoro"], batch)
        if "kf" in learners:
            torch_steps["torch_kf"] = _torch_stochastic_step("TorchKFRTRL", learners["kf"], batch)
    for name, step in torch_steps.items():
        if step is not None:
            timers[name] = per_call_timer(step)
    m = measure_interleaved(timers, repeats=repeats, min_time=min_time, settle=settle)
    us = {k: m[k]["best"] * 1e6 for k in learners}
    us["fwd"] = m["fwd"]["best"] * 1e6 / FORWARD_STEPS
    for name in torch_steps:
        if name in m:
            us[name] = m[name]["best"] * 1e6
    pass_us = {name: m[f"pass{size}"]["best"] * 1e6 for name, size in stream_bytes.items()}
    row = {
        "cell": cell, "device": device, "hidden": hidden, "batch": batch, "inputs": N_INPUTS,
        "threads": threads, "repeats": repeats,
        "us_per_step": us, "pass_us": pass_us, "stream_bytes": stream_bytes,
        "over_pass": {name: us[name] / pass_us[name] for name in pass_us},
        "memory_bytes": {k: int(v.memory_bytes()) for k, v in learners.items() if k != "bptt"},
        "kf_product_shape": kf_shape,
        "kf_over_sgemm": None if kf_shape is None else m["sgemm"]["best"] * 1e6 / us["kf"],
        "other_cpu_share": m["other_cpu_share"],
        "samples_s": {k: m[k]["samples"] for k in timers},
    }
    row["snap_over_pass"] = row["over_pass"]["snap"]
    del learners
    gc.collect()
    return row


def run(quick: bool = False, *, cells=None, hidden=None, batches=None, repeats: Optional[int] = None,
        device: str = "cpu", progress: Optional[Callable[[str], None]] = None) -> list[dict]:
    """Measures every (cell, H, B) with rtrl on ``device``; ``quick`` uses fewer sizes and repeats."""
    d_repeats, min_time, settle = QUICK_SETTINGS if quick else FULL_SETTINGS
    rows = []
    for cell in cells or CELLS:
        for h in hidden or (QUICK_HIDDEN if quick else HIDDEN):
            for batch in batches or (QUICK_BATCHES if quick else BATCHES):
                if not _fits(cell, h, batch):
                    if progress:
                        progress(f"skipping {cell} H={h} B={batch}: it would not fit in half the free memory")
                    continue
                if progress:
                    progress(f"measuring {cell} H={h} B={batch} ...")
                rows.append(measure_case(cell, h, batch, repeats=repeats or d_repeats, min_time=min_time,
                                         settle=settle, device=device))
    return rows


def _us(name: str) -> Callable[[dict], str]:
    return lambda r: f'{r["us_per_step"][name]:.1f}' if name in r["us_per_step"] else "-"


_COLUMNS = (
    ("cell", 4, lambda r: r["cell"]),
    ("H", 5, lambda r: f'{r["hidden"]}'),
    ("B", 3, lambda r: f'{r["batch"]}'),
    ("SnAp-1", 9, _us("snap")),
    ("e-prop", 9, _us("eprop")),
    ("RFLO", 9, _us("rflo")),
    ("UORO", 9, _us("uoro")),
    ("KF-RTRL", 9, _us("kf")),
    ("RTRL", 9, _us("rtrl")),
    ("BPTT", 8, _us("bptt")),
    ("fwd", 7, _us("fwd")),
    ("MiB", 6, lambda r: f'{r["stream_bytes"]["snap"] / 2**20:.1f}'),
    ("pass", 7, lambda r: f'{r["pass_us"]["snap"]:.1f}'),
    ("SnAp/pass", 9, _over_pass("snap")),
    ("e-prop/pass", 11, _over_pass("eprop")),
    ("RFLO/pass", 9, _over_pass("rflo")),
    ("UORO/pass", 9, _over_pass("uoro")),
    ("KF/sgemm", 8, lambda r: "-" if r.get("kf_over_sgemm") is None else f'{r["kf_over_sgemm"]:.2f}'),
    ("SnAp torch/ours", 15, _ratio("torch_snap", "snap")),
    ("RFLO torch/ours", 15, _ratio("torch_rflo", "rflo")),
    ("UORO torch/ours", 15, _ratio("torch_uoro", "uoro")),
    ("KF torch/ours", 13, _ratio("torch_kf", "kf")),
    ("other%", 6, lambda r: "-" if r.get("other_cpu_share") is None else f'{100 * r["other_cpu_share"]:.0f}'),
)


def format_table(rows: list[dict]) -> str:
    return "\n".join(table_lines(_COLUMNS, rows))


LEGEND = """\
SnAp-1 ... BPTT: min over repeats of learner.run per step (real-time Adam, float32, I=32, O=4), us;
RFLO on the rnn only, KF-RTRL on rnn and lstm up to H=256, exact RTRL up to H=64; BPTT: truncation 32;
fwd: the layer's forward alone (rtrl.nn, 32 steps a call) per step.
MiB: SnAp-1's traces; pass: one NumPy read+write pass over them, interleaved with the learners;
x/pass = the learner's step over a pass over its own state (rtrl.memory.estimate's sensitivities;
1.0 = the memory rate). KF/sgemm = one OpenBLAS sgemm of KF-RTRL's product shape over its step.
x torch/ours: the learner written with torch ops (rtrl.bench.torch_snap: SnAp-1, RFLO;
rtrl.bench.torch_stochastic: UORO, KF-RTRL on the rnn; one Python call per step, the same Adam and
seed, torch's CPU threads) over rtrl's step."""
