"""How a learner drives the native core for each kind of model: its state arrays and its calls."""

from __future__ import annotations

from typing import Any

from ._arrays import zeros_touched
from .models import FullyRecurrent, RecurrentNet


class FullyRecurrentKernels:
    """Williams-Zipser network: state y (B, n); exact RTRL's sensitivities (n, B, n_c, width), n_c
    the weight rows this process carries (all of them but in column-sharded RTRL), or the
    unit-diagonal traces of SnAp-1 and e-prop (B, n, width) (diagonal_traces.hpp)."""

    def __init__(self, learner: Any, algorithm: str | None) -> None:
        m, xp, B = learner.model, learner._xp, learner.batch_size
        self.learner, self.model = learner, m
        self.core, self.stream = learner._core, learner._be.stream
        row0, rows = getattr(learner, "_shard", (0, -1))  # column-sharded RTRL: this process's rows
        self.config = self.core.FullyRecurrentConfig(
            m.n_units, m.n_inputs, m.bias, m.n_outputs, B, m.activation, learner.teacher_forcing,
            learner.reduction, shard_row0=row0, shard_rows=rows)
        self.arrays = {"state": zeros_touched(xp, (B, m.n_units), dtype=m.dtype)}
        self.algorithm = algorithm
        self.stream_axis = {"state": 0}
        if algorithm == "exact":
            self.arrays["sensitivities"] = zeros_touched(
                xp, (m.n_units, B, self.config.carried_rows, m.width), dtype=m.dtype)
            self.stream_axis["sensitivities"] = 1
        elif algorithm == "kf":
            self.arrays["kron_A"] = zeros_touched(xp, (m.n_units, B, m.n_units), dtype=m.dtype)
            self.arrays["kron_u"] = zeros_touched(xp, (B, m.width), dtype=m.dtype)
            self.stream_axis.update({"kron_A": 1, "kron_u": 0})
        elif algorithm == "uoro":
            self.arrays["theta_tangent"] = zeros_touched(xp, (B, m.n_units, m.width), dtype=m.dtype)
            self.arrays["tangent"] = zeros_touched(xp, (B, m.n_units), dtype=m.dtype)
            self.stream_axis.update({"theta_tangent": 0, "tangent": 0})
        elif algorithm is not None:
            self.arrays["traces"] = zeros_touched(xp, (B, m.n_units, m.width), dtype=m.dtype)
            self.stream_axis["traces"] = 0

    def stream_views(self) -> list:
        """(array view, stream axis) pairs covering the state and the sensitivities."""
        return [(a, self.stream_axis[k]) for k, a in self.arrays.items()]

    @property
    def state(self) -> Any:
        return self.arrays["state"]

    def _grad(self) -> Any:
        return self.model._split(self.learner._grad)["weight"]

    def rtrl(self, X: Any, targets: Any, outputs: Any, loss: Any, each_step: bool) -> dict:
        lr, shape = self.learner, self.model.weight.shape
        opt_state = lr._optimizer_state
        if opt_state is not None:
            opt_state = opt_state.reshape((opt_state.shape[0],) + shape)
        P = self.arrays[{"exact": "sensitivities", "uoro": "theta_tangent",
                         "kf": "kron_A"}.get(self.algorithm, "traces")]
        return self.core.fully_recurrent_rtrl(
            self.config, self.model.weight, self.arrays["state"], P,
            self._grad(), opt_state, X, targets, outputs, loss, lr._native_optimizer,
            lr._optimizer_step, each_step, on_nonfinite=lr.on_nonfinite, stream=self.stream(),
            algorithm=self.algorithm, gradient_hook=lr._gradient_hook,
            **_random_arguments(lr, self.arrays.get("tangent", self.arrays.get("kron_u"))))

    def validate(self, X: Any, targets: Any) -> None:
        self.core.validate_sequence(self.config, X, targets, self.stream())

    def bptt(self, X: Any, targets: Any, outputs: Any, loss: Any) -> dict:
        return self.core.fully_recurrent_bptt(self.config, self.model.weight, self.arrays["state"],
                                              self._grad(), X, targets, outputs, loss,
                                              on_nonfinite=self.learner.on_nonfinite, stream=self.stream())


def _random_arguments(learner: Any, tangent: Any) -> dict:
    """A stochastic learner's state tangent and generator (seed, the learner's step count)."""
    if tangent is None:
        return {}
    return {"tangent": tangent, "seed": learner.seed, "random_step": learner.steps,
            "immediate_scale": learner._immediate_scale,
            "first_stream": getattr(learner, "_first_stream", 0)}  # a stream-parallel rank's first


class RecurrentNetKernels:
    """A stack of RNN/LSTM/GRU layers and a readout: state h (B, H) [and c] for one layer, (L, B, H)
    for more; sensitivities (H, B, n_theta) for one layer, (H, B N_<=l) for layer l of more (their
    columns grouped by layer, then stream: cell_rtrl.hpp); or SnAp-1's and e-prop's traces, one
    (B, N_l) array per layer and state part, ``traces_h`` (``traces_h_l{l}`` with more layers), and
    e-prop's random ``feedback`` (O, H) (diagonal_traces.hpp)."""

    def __init__(self, learner: Any, algorithm: str | None, feedback: Any = None) -> None:
        m, xp, B = learner.model, learner._xp, learner.batch_size
        self.learner, self.model, self.xp = learner, m, xp
        self.core, self.stream = learner._core, learner._be.stream
        row0, rows = getattr(learner, "_shard", (0, -1))  # column-sharded RTRL: this process's gate rows
        self.config = self.core.CellNetConfig(m.cell, m.nonlinearity, m.input_size, m.hidden_size,
                                              m.output_size, B, learner.loss, learner.reduction,
                                              layers=m.num_layers, alpha=m.alpha, shard_row0=row0,
                                              shard_rows=rows)
        H, L, lstm = m.hidden_size, m.num_layers, m.cell == "lstm"
        state_shape = (B, H) if L == 1 else (L, B, H)
        parts = ("h", "c") if lstm else ("h",)
        self.arrays = {f"state_{p}": zeros_touched(xp, state_shape, dtype=m.dtype) for p in parts}
        self.stream_axis = {f"state_{p}": 0 if L == 1 else 1 for p in parts}
        self._stream_views = [(self.arrays[f"state_{p}"], self.stream_axis[f"state_{p}"]) for p in parts]
        self.sensitivity_names: dict[str, list[str]] = {p: [] for p in parts}
        self.algorithm, self.feedback = algorithm, None
        sensitivities = algorithm == "exact"
        self.kron_u: list = []
        if algorithm == "kf":
            G, widths = m.gates, [n // (m.gates * H) for n in self.config.layer_theta]
            for l in range(L):
                suffix = "" if L == 1 else f"_l{l}"
                for p in parts:
                    name = f"kron_A_{p}{suffix}"
                    A = self.arrays[name] = zeros_touched(xp, (H, B * G * H), dtype=m.dtype)
                    self.sensitivity_names[p].append(name)
                    self._stream_views.append((A.reshape(H, B, G * H), 1))
                u = self.arrays[f"kron_u{suffix}"] = zeros_touched(xp, (B, widths[l]), dtype=m.dtype)
                self.stream_axis[f"kron_u{suffix}"] = 0
                self._stream_views.append((u, 0))
                self.kron_u.append(u)
        elif algorithm == "uoro":
            for l, n in enumerate(self.config.layer_theta):
                name = "theta_tangent" + ("" if L == 1 else f"_l{l}")
                self.arrays[name] = zeros_touched(xp, (B, n), dtype=m.dtype)
                self.stream_axis[name] = 0
                self._stream_views.append((self.arrays[name], 0))
                self.sensitivity_names["h"].append(name)
            self.arrays["tangent"] = zeros_touched(xp, (L, len(parts), B, H), dtype=m.dtype)
            self.stream_axis["tangent"] = 2
            self._stream_views.append((self.arrays["tangent"], 2))
        elif algorithm not in (None, "exact"):
            for p in parts:
                for l, n in enumerate(self.config.layer_theta):
                    name = f"traces_{p}" + ("" if L == 1 else f"_l{l}")
                    self.arrays[name] = zeros_touched(xp, (B, n), dtype=m.dtype)
                    self.stream_axis[name] = 0
                    self._stream_views.append((self.arrays[name], 0))
                    self.sensitivity_names[p].append(name)
            if feedback is not None:
                self.arrays["feedback"] = self.feedback = xp.asarray(feedback, dtype=m.dtype)
        if sensitivities and L == 1:
            for p in parts:
                name = f"sensitivities_{p}"
                self.arrays[name] = zeros_touched(xp, (H, B, self.config.carried_through[0]), dtype=m.dtype)
                self.stream_axis[name] = 1
                self._stream_views.append((self.arrays[name], 1))
                self.sensitivity_names[p].append(name)
        elif sensitivities:
            through, at = self.config.carried_through, self.config.carried_at
            for p in parts:
                for l in range(L):
                    name = f"sensitivities_{p}_l{l}"
                    P = self.arrays[name] = zeros_touched(xp, (H, B * through[l]), dtype=m.dtype)
                    self.sensitivity_names[p].append(name)
                    for k in range(l + 1):  # layer k's columns: (H, B, N_k)
                        n = (through[k] - at[k])
                        self._stream_views.append((P[:, B * at[k]:B * at[k] + B * n].reshape(H, B, n), 1))

    def stream_views(self) -> list:
        """(array view, stream axis) pairs covering the state and the sensitivities."""
        return self._stream_views

    @property
    def state(self) -> Any:
        return self.arrays["state_h"]

    def rtrl(self, X: Any, targets: Any, outputs: Any, loss: Any, each_step: bool) -> dict:
        lr, a = self.learner, self.arrays
        P_c = [a[n] for n in self.sensitivity_names.get("c", [])]
        return self.core.cell_net_rtrl(
            self.config, self.model._flat, a["state_h"], a.get("state_c"),
            [a[n] for n in self.sensitivity_names["h"]], P_c or None, lr._grad, lr._optimizer_state, X, targets, outputs, loss,
            lr._native_optimizer, lr._optimizer_step, each_step, on_nonfinite=lr.on_nonfinite,
            stream=self.stream(), algorithm=self.algorithm, feedback=self.feedback,
            gradient_hook=lr._gradient_hook, **_random_arguments(lr, self.kron_u or a.get("tangent")))

    def validate(self, X: Any, targets: Any) -> None:
        xp = self.xp
        if not bool(xp.isfinite(X).all()):
            t, s, _ = (int(i) for i in xp.argwhere(~xp.isfinite(X))[0])
            raise ValueError(f"X: non-finite value at step {t}, stream {s} (values must be finite in the "
                             "model's dtype)")
        if targets is not None and bool(xp.isinf(targets).any()):
            t, s = (int(i) for i in xp.argwhere(xp.isinf(targets))[0][:2])
            raise ValueError(f"targets: infinite value at step {t}, stream {s} (NaN marks a missing target)")

    def bptt(self, X: Any, targets: Any, outputs: Any, loss: Any) -> dict:
        """BPTT over one chunk (all layers, in the core); the state moves on."""
        lr, a = self.learner, self.arrays
        return self.core.cell_net_bptt(self.config, self.model._flat, a["state_h"], a.get("state_c"),
                                       lr._grad, X, targets, outputs, loss, on_nonfinite=lr.on_nonfinite,
                                       stream=self.stream())

def kernels_for(learner: Any, algorithm: str | None, feedback: Any = None) -> Any:
    """The kernels of ``learner``'s model for ``algorithm``: None (BPTT), "exact" (RTRL), "snap1" or
    "eprop" (with e-prop's ``feedback`` matrix (O, H) on RecurrentNet, or None)."""
    if isinstance(learner.model, FullyRecurrent):
        return FullyRecurrentKernels(learner, algorithm)
    if isinstance(learner.model, RecurrentNet):
        return RecurrentNetKernels(learner, algorithm, feedback)
    raise TypeError(f"model: expected an rtrl.FullyRecurrent or rtrl.RecurrentNet, got {type(learner.model).__name__}")
