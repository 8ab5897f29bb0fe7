"""The autograd Function of a stack of recurrent layers on rtrl's kernels (a cell is a one-layer,
one-step stack): forward through ``rtrl.nn.stack.stack_forward``, backward through ``stack_backward``.

Everything backward reads is saved with ``save_for_backward``: the caller's input, initial states and
parameters themselves (so that changing one in place before backward raises torch's usual error), and
the buffers of the forward pass (each layer's output, the gates, cells and GRU auxiliaries) as tensors
sharing their memory. They are freed after backward like any saved tensor, kept with
``retain_graph=True``, and seen by saved-tensor hooks.

Backward gives first derivatives only. A backward with ``create_graph=True`` returns gradients whose
own backward raises :data:`DOUBLE_BACKWARD` (as ``once_differentiable`` does, but also when the
upstream gradients do not require grad, so that a gradient penalty cannot silently miss a term).
"""

from __future__ import annotations

from typing import Any, Sequence

import torch

from ..nn.stack import StackSpec, saved_arrays, saved_from, stack_backward, stack_forward
from ._bridge import as_array, as_tensor, on_device


DOUBLE_BACKWARD = (
    "rtrl.torch: the gradient of a gradient (double backward, create_graph=True) through rtrl.torch's "
    "{cell} is not supported; rtrl's kernels give first derivatives only (torch.nn's module gives higher ones)"
)


class _RefusedDoubleBackward(torch.autograd.Function):
    """Passes first-order gradients through, linked in the graph to what they depend on (the
    ``anchors``: the forward's inputs); differentiating them raises :data:`DOUBLE_BACKWARD`."""

    @staticmethod
    def forward(ctx: Any, cell: str, anchors: int, *tensors: torch.Tensor) -> tuple[torch.Tensor, ...]:
        ctx.cell = cell
        return tuple(g.view_as(g) for g in tensors[anchors:])

    @staticmethod
    def backward(ctx: Any, *_: Any) -> None:
        raise RuntimeError(DOUBLE_BACKWARD.format(cell=ctx.cell.upper()))


def _refuse_double_backward(cell: str, inputs: tuple[torch.Tensor | None, ...],
                            grads: tuple[torch.Tensor | None, ...]) -> tuple[torch.Tensor | None, ...]:
    present = [i for i, g in enumerate(grads) if g is not None]
    anchors = [t for t in inputs if t is not None and t.requires_grad]
    wrapped = _RefusedDoubleBackward.apply(cell, len(anchors), *anchors, *(grads[i] for i in present))
    out = list(grads)
    for i, g in zip(present, wrapped):
        out[i] = g
    return tuple(out)


class StackFunction(torch.autograd.Function):
    """``y, h_n[, c_n] = StackFunction.apply(spec, names, x, h0, c0, *params)``.

    x (T, B, I) and h0, c0 (L * D, B, H) (or None for zeros) C-contiguous; ``params`` the parameter
    tensors named ``names`` (torch.nn's layer names, ``weight_ih_l0`` ...), C-contiguous, all of one
    dtype (float32 or float64) and device. y (T, B, D * H); h_n, c_n (L * D, B, H); c_n for the LSTM only.
    """

    @staticmethod
    def forward(ctx: Any, spec: StackSpec, names: Sequence[str], x: torch.Tensor, h0: torch.Tensor | None,
                c0: torch.Tensor | None, *params: torch.Tensor) -> tuple[torch.Tensor, ...]:
        with on_device(x.device) as be:
            p = {name: as_array(t, be) for name, t in zip(names, params)}
            _, h_n, c_n, saved = stack_forward(spec, be, p, as_array(x, be), as_array(h0, be), as_array(c0, be))
            buffers = [as_tensor(a, be) for a in saved_arrays(saved)[2:]]  # after h0, c0 (kept as given)
            h_n, c_n = as_tensor(h_n, be), as_tensor(c_n, be)
        y = buffers[spec.num_layers - 1]  # the top layer's output, saved and returned as one tensor
        ctx.spec, ctx.names = spec, tuple(names)
        ctx.save_for_backward(x, h0, c0, *params, *buffers)
        ctx.set_materialize_grads(False)
        return (y, h_n, c_n) if spec.cell == "lstm" else (y, h_n)

    @staticmethod
    def backward(ctx: Any, dy: torch.Tensor | None, dh_n: torch.Tensor | None,
                 dc_n: torch.Tensor | None = None) -> tuple[torch.Tensor | None, ...]:
        saved = ctx.saved_tensors
        with torch.no_grad():
            grads = StackFunction._gradients(ctx.spec, ctx.names, saved, dy, dh_n, dc_n)
        if torch.is_grad_enabled():  # backward(create_graph=True)
            k = 3 + len(ctx.names)  # x, h0, c0, parameters: what the gradients depend on
            grads = _refuse_double_backward(ctx.spec.cell, saved[:k], grads)
        return (None, None, *grads)

    @staticmethod
    def _gradients(spec: StackSpec, names: tuple[str, ...], saved_tensors: tuple[torch.Tensor | None, ...],
                   dy: torch.Tensor | None, dh_n: torch.Tensor | None,
                   dc_n: torch.Tensor | None) -> tuple[torch.Tensor | None, ...]:
        """dx, dh0, dc0 (None for a state not given) and the parameters' gradients."""
        x, h0, c0, *rest = saved_tensors
        params, buffers = rest[: len(names)], rest[len(names):]
        y = buffers[spec.num_layers - 1]
        dy = torch.zeros_like(y) if dy is None else dy.contiguous()
        dh_n = None if dh_n is None else dh_n.contiguous()
        dc_n = None if dc_n is None else dc_n.contiguous()
        grads = [torch.zeros_like(t) for t in params]  # the kernels add into them
        with on_device(x.device) as be:
            saved = saved_from(spec, as_array(x, be), [as_array(t, be) for t in (h0, c0, *buffers)])
            p = {name: as_array(t, be) for name, t in zip(names, params)}
            g = {name: as_array(t, be) for name, t in zip(names, grads)}
            dx, dh0, dc0 = stack_backward(spec, be, p, saved, as_array(dy, be), as_array(dh_n, be),
                                          as_array(dc_n, be), g)
            dx, dh0, dc0 = as_tensor(dx, be), as_tensor(dh0, be), as_tensor(dc0, be)
        return (dx, None if h0 is None else dh0, None if c0 is None else dc0, *grads)


@torch.compiler.disable
def run_stack(spec: StackSpec, names: Sequence[str], x: torch.Tensor, h0: torch.Tensor | None,
              c0: torch.Tensor | None, params: Sequence[torch.Tensor]) -> tuple[torch.Tensor, ...]:
    """:class:`StackFunction` on contiguous arguments. ``torch.compile`` does not trace into it (the
    native call is opaque to it): a compiled model runs it eagerly, as a graph break."""
    def contiguous(t: torch.Tensor | None) -> torch.Tensor | None:
        return None if t is None else t.contiguous()

    return StackFunction.apply(spec, tuple(names), x.contiguous(), contiguous(h0), contiguous(c0),
                               *(p.contiguous() for p in params))
