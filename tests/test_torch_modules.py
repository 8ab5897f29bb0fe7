"""rtrl.torch (API.md "Interoperability"): RNN / LSTM / GRU and their cells as torch.nn.Modules on
rtrl's kernels, against torch.nn and torch.autograd.

* outputs, final states and the gradients of input, initial states and every parameter equal
  torch.nn's (float64 within 1e-12 relative, observed ~1e-16; float32 within 1e-5);
* ``torch.autograd.gradcheck`` in float64 of every module and cell over its input, initial states and
  parameters (through ``torch.func.functional_call``), with num_layers = 2, bidirectional, batch_first
  and unbatched input among the cases;
* parameter names, shapes and initialisation as torch.nn's; ``load_state_dict`` both ways;
* a model containing ``rtrl.torch.LSTM`` trained 20 steps with Adam ends at the parameters of the same
  model with ``torch.nn.LSTM`` (float64, within 1e-10);
* double backward refused with rtrl's message; torch.compile runs the modules (as a graph break);
* no copies of the input, states or parameters (what autograd saves is the caller's tensors), and an
  in-place change of one before backward is caught;
* argument errors name the argument and the expected shape.
"""

import math
import shutil
import subprocess
import sys
import warnings

import pytest

import rtrl

torch = pytest.importorskip("torch")
import rtrl.torch as rt  # noqa: E402

I, H, T, B = 3, 4, 5, 2
F64 = torch.float64

# (cell, nonlinearity); nonlinearity only for RNN
KINDS = [("rnn", "tanh"), ("rnn", "relu"), ("lstm", None), ("gru", None)]
KIND_IDS = ["rnn_tanh", "rnn_relu", "lstm", "gru"]
OURS = {"rnn": rt.RNN, "lstm": rt.LSTM, "gru": rt.GRU}
THEIRS = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}
OURS_CELL = {"rnn": rt.RNNCell, "lstm": rt.LSTMCell, "gru": rt.GRUCell}
THEIRS_CELL = {"rnn": torch.nn.RNNCell, "lstm": torch.nn.LSTMCell, "gru": torch.nn.GRUCell}

# (options, unbatched)
LAYER_CASES = {
    "L1": (dict(), False),
    "L2-bi-batch_first": (dict(num_layers=2, bidirectional=True, batch_first=True), False),
    "L2-unbatched": (dict(num_layers=2), True),
    "bi-nobias": (dict(bidirectional=True, bias=False), False),
    "bi-unbatched-batch_first": (dict(bidirectional=True, batch_first=True), True),  # (T, I) all the same
}


def torch_device(device):
    if device == "cuda" and not torch.cuda.is_available():
        pytest.skip("torch sees no CUDA device")
    return torch.device(device)


def pair(kind, dtype=F64, device="cpu", seed=0, **options):
    """torch.nn's module and ours, each built under the same seed (so with the same parameters)."""
    cell, nonlinearity = kind
    if cell == "rnn":
        options["nonlinearity"] = nonlinearity
    torch.manual_seed(seed)
    theirs = THEIRS[cell](I, H, dtype=dtype, device=device, **options)
    torch.manual_seed(seed)
    ours = OURS[cell](I, H, dtype=dtype, device=device, **options)
    return theirs, ours


def cell_pair(kind, dtype=F64, device="cpu", seed=0, **options):
    cell, nonlinearity = kind
    if cell == "rnn":
        options["nonlinearity"] = nonlinearity
    torch.manual_seed(seed)
    theirs = THEIRS_CELL[cell](I, H, dtype=dtype, device=device, **options)
    torch.manual_seed(seed)
    ours = OURS_CELL[cell](I, H, dtype=dtype, device=device, **options)
    return theirs, ours


def flat(out):
    """The tensors of a module's output, nested tuples flattened."""
    if isinstance(out, torch.Tensor):
        return [out]
    return [t for part in out for t in flat(part)]


def layer_inputs(cell, options, unbatched, dtype=F64, device="cpu", seed=1):
    """x and the initial states (requiring grad) of a layer call."""
    g = torch.Generator().manual_seed(seed)
    D = 2 if options.get("bidirectional") else 1
    L = options.get("num_layers", 1)
    x_shape = (T, I) if unbatched else ((B, T, I) if options.get("batch_first") else (T, B, I))
    s_shape = (L * D, H) if unbatched else (L * D, B, H)
    x = torch.randn(x_shape, generator=g, dtype=dtype).to(device).requires_grad_()
    states = [(0.5 * torch.randn(s_shape, generator=g, dtype=dtype)).to(device).requires_grad_()
              for _ in range(2 if cell == "lstm" else 1)]
    return x, states


def call(module, cell, x, states):
    if not states:
        return module(x)
    return module(x, tuple(states) if cell == "lstm" else states[0])


def relative(a, b):
    a, b = a.detach(), b.detach()
    return float((a - b).norm() / max(float(b.norm()), 1e-300))


# ---------------------------------------------------------------------------------------------
# the package


def test_importing_rtrl_does_not_import_torch():
    code = "import sys, rtrl, rtrl.nn; print('torch' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_rtrl_torch_without_torch_says_how_to_get_it():
    code = ("import sys; sys.modules['torch'] = None\n"
            "try:\n    import rtrl.torch\nexcept ImportError as e:\n    print('ImportError:', e)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "ImportError: rtrl.torch needs PyTorch" in done.stdout and "pip install torch" in done.stdout


# ---------------------------------------------------------------------------------------------
# parameters


@pytest.mark.parametrize("case", list(LAYER_CASES))
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_parameters_named_shaped_and_initialised_as_torch(kind, case):
    options, _ = LAYER_CASES[case]
    theirs, ours = pair(kind, dtype=torch.float32, **options)
    assert [n for n, _ in ours.named_parameters()] == [n for n, _ in theirs.named_parameters()]
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert isinstance(p, torch.nn.Parameter) and p.dtype == torch.float32, name
        assert torch.equal(p, q), name  # same draws in the same order under the same seed
    assert ours.all_weights[-1][0] is getattr(ours, ours._all_weights[-1][0])


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_load_state_dict_both_ways(kind):
    theirs, ours = pair(kind, num_layers=2, bidirectional=True)
    torch.manual_seed(5)
    other = OURS[kind[0]](I, H, num_layers=2, bidirectional=True, dtype=F64,
                          **({"nonlinearity": kind[1]} if kind[0] == "rnn" else {}))
    assert other.load_state_dict(theirs.state_dict()) is not None
    assert all(torch.equal(a, b) for a, b in zip(other.state_dict().values(), theirs.state_dict().values()))
    with torch.no_grad():
        for p in ours.parameters():
            p.mul_(0.5)
    theirs.load_state_dict(ours.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_cell_parameters_and_state_dict_as_torch(kind):
    for bias in (True, False):
        theirs, ours = cell_pair(kind, bias=bias)
        assert list(ours.state_dict()) == list(theirs.state_dict())
        assert all(torch.equal(a, b) for a, b in zip(ours.state_dict().values(), theirs.state_dict().values()))
        ours.load_state_dict(theirs.state_dict())
        assert (ours.bias_ih is None) == (not bias)


def test_repr_matches_torch():
    assert repr(rt.LSTM(3, 4, num_layers=2, batch_first=True)) == repr(
        torch.nn.LSTM(3, 4, num_layers=2, batch_first=True))
    assert repr(rt.GRUCell(3, 4, bias=False)) == repr(torch.nn.GRUCell(3, 4, bias=False))
    assert "nonlinearity='relu'" in repr(rt.RNN(3, 4, 1, "relu"))


# ---------------------------------------------------------------------------------------------
# outputs and gradients against torch.nn


def check_layer_parity(kind, options, unbatched, initial, dtype, device, tol):
    """Ours on ``device`` against torch.nn on the CPU (torch's own CUDA path may round differently)."""
    cell = kind[0]
    theirs, _ = pair(kind, dtype=dtype, **options)
    _, ours = pair(kind, dtype=dtype, device=device, **options)
    x, states = layer_inputs(cell, options, unbatched, dtype)
    given = states if initial else []
    x_o = x.detach().to(device).requires_grad_()
    given_o = [t.detach().to(device).requires_grad_() for t in given]
    out_t, out_o = flat(call(theirs, cell, x, given)), flat(call(ours, cell, x_o, given_o))
    g = torch.Generator().manual_seed(7)
    ups = [torch.randn(o.shape, generator=g, dtype=dtype) for o in out_t]
    grads_t = torch.autograd.grad(out_t, [x, *given, *theirs.parameters()], ups)
    grads_o = torch.autograd.grad(out_o, [x_o, *given_o, *ours.parameters()], [u.to(device) for u in ups])
    for a, b in zip(out_o, out_t):
        assert a.shape == b.shape and a.dtype == b.dtype and a.device == torch.device(device)
        assert relative(a.cpu(), b) <= tol
    for a, b in zip(grads_o, grads_t):
        assert a.shape == b.shape and a.dtype == b.dtype
        assert relative(a.cpu(), b) <= tol


@pytest.mark.parametrize("initial", [True, False], ids=["states", "nostates"])
@pytest.mark.parametrize("case", list(LAYER_CASES))
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_layers_match_torch_float64(kind, case, initial):
    options, unbatched = LAYER_CASES[case]
    check_layer_parity(kind, options, unbatched, initial, F64, "cpu", 1e-12)


@pytest.mark.parametrize("case", ["L1", "L2-bi-batch_first"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_layers_match_torch_float32(kind, case, device):
    options, unbatched = LAYER_CASES[case]
    check_layer_parity(kind, options, unbatched, True, torch.float32, torch_device(device), 1e-5)


@pytest.mark.parametrize("unbatched", [False, True], ids=["batched", "unbatched"])
@pytest.mark.parametrize("initial", [True, False], ids=["states", "nostates"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_cells_match_torch_over_steps(kind, initial, unbatched):
    """Three steps, state fed back; the gradients reach the first input and the initial state."""
    cell = kind[0]
    theirs, ours = cell_pair(kind)
    g = torch.Generator().manual_seed(3)
    shape = (I,) if unbatched else (B, I)
    xs = [torch.randn(shape, generator=g, dtype=F64, requires_grad=True) for _ in range(3)]
    s_shape = (H,) if unbatched else (B, H)
    state0 = [torch.randn(s_shape, generator=g, dtype=F64, requires_grad=True)
              for _ in range(2 if cell == "lstm" else 1)] if initial else []
    results = []
    for module in (theirs, ours):
        state = (tuple(state0) if cell == "lstm" else state0[0]) if initial else None
        outs = []
        for x in xs:
            state = module(x, state)
            outs += flat(state)
        loss = sum((o * (k + 1)).sum() for k, o in enumerate(outs)) + sum((o ** 2).sum() for o in outs)
        results.append((outs, torch.autograd.grad(loss, [*xs, *state0, *module.parameters()])))
    (outs_t, grads_t), (outs_o, grads_o) = results
    for a, b in zip(outs_o, outs_t):
        assert a.shape == b.shape and relative(a, b) <= 1e-12
    for a, b in zip(grads_o, grads_t):
        assert a.shape == b.shape and relative(a, b) <= 1e-12


# ---------------------------------------------------------------------------------------------
# gradcheck


def gradcheck_module(module, cell, x, states):
    """gradcheck over x, the states and every parameter (swapped in by functional_call)."""
    names = [n for n, _ in module.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in module.parameters()]
    k = len(states)

    def f(x, *rest):
        hx = (tuple(rest[:k]) if cell == "lstm" else rest[0]) if k else None
        args = (x,) if hx is None else (x, hx)
        return tuple(flat(torch.func.functional_call(module, dict(zip(names, rest[k:])), args)))

    assert torch.autograd.gradcheck(f, (x, *states, *params))


@pytest.mark.parametrize("initial", [True, False], ids=["states", "nostates"])
@pytest.mark.parametrize("case", list(LAYER_CASES))
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_layer_gradcheck(kind, case, initial):
    options, unbatched = LAYER_CASES[case]
    _, ours = pair(kind, **options)
    x, states = layer_inputs(kind[0], options, unbatched)
    gradcheck_module(ours, kind[0], x, states if initial else [])


@pytest.mark.parametrize("case", ["batched", "unbatched", "nostate", "nobias"])
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_cell_gradcheck(kind, case):
    _, ours = cell_pair(kind, bias=case != "nobias")
    g = torch.Generator().manual_seed(2)
    lead = () if case == "unbatched" else (B,)
    x = torch.randn(lead + (I,), generator=g, dtype=F64, requires_grad=True)
    states = [torch.randn(lead + (H,), generator=g, dtype=F64, requires_grad=True)
              for _ in range(2 if kind[0] == "lstm" else 1)]
    gradcheck_module(ours, kind[0], x, [] if case == "nostate" else states)


# ---------------------------------------------------------------------------------------------
# training with torch.optim


class SequenceModel(torch.nn.Module):
    """LSTM (2 layers, batch-first) and a linear readout of every step."""

    def __init__(self, lstm_type):
        super().__init__()
        self.lstm = lstm_type(3, 6, num_layers=2, batch_first=True, dtype=F64)
        self.readout = torch.nn.Linear(6, 2, dtype=F64)

    def forward(self, x):
        y, _ = self.lstm(x)
        return self.readout(y)


def train(model, steps=20):
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    g = torch.Generator().manual_seed(11)
    losses = []
    for _ in range(steps):
        x = torch.randn(4, 7, 3, generator=g, dtype=F64)
        target = torch.sin(x.cumsum(1))[..., :2]
        loss = torch.nn.functional.mse_loss(model(x), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def test_adam_training_matches_torch_lstm():
    torch.manual_seed(0)
    reference = SequenceModel(torch.nn.LSTM)
    ours = SequenceModel(rt.LSTM)
    ours.load_state_dict(reference.state_dict())
    start = {k: v.clone() for k, v in reference.state_dict().items()}
    losses_t, losses_o = train(reference), train(ours)
    assert losses_o[-1] < 0.8 * losses_o[0]  # it learned something
    for (name, p), q in zip(ours.named_parameters(), reference.parameters()):
        p, q = p.detach(), q.detach()
        assert float((p - start[name]).abs().max()) > 1e-3, name  # and the parameters moved
        assert float((p - q).abs().max()) <= 1e-10, name
    assert max(abs(a - b) for a, b in zip(losses_o, losses_t)) <= 1e-12


# ---------------------------------------------------------------------------------------------
# autograd details


@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_double_backward_refused(kind):
    _, ours = pair(kind)
    x, _ = layer_inputs(kind[0], {}, False)
    (g,) = torch.autograd.grad(flat(ours(x))[0].sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward.*not supported"):
        (g ** 2).sum().backward()
    _, cell = cell_pair(kind)
    x = torch.randn(B, I, dtype=F64, requires_grad=True)
    (g,) = torch.autograd.grad(flat(cell(x))[0].sum(), x, create_graph=True)
    with pytest.raises(RuntimeError, match="double backward.*not supported"):
        torch.autograd.grad(g.sum(), x)


def test_first_order_gradients_under_create_graph_are_right():
    theirs, ours = pair(KINDS[2])
    x, _ = layer_inputs("lstm", {}, False)
    (g_o,) = torch.autograd.grad(ours(x)[0].sum(), x, create_graph=True)
    (g_t,) = torch.autograd.grad(theirs(x)[0].sum(), x)
    assert relative(g_o.detach(), g_t) <= 1e-12


def test_saved_tensors_are_the_callers_own():
    """Autograd keeps the caller's input, states and parameters themselves: no copies."""
    _, ours = pair(KINDS[2], num_layers=2)
    x, (h0, c0) = layer_inputs("lstm", {"num_layers": 2}, False)
    packed = []

    def pack(t):
        packed.append(t)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out, _ = ours(x, (h0, c0))
    pointers = {t.data_ptr() for t in packed}
    for t in (x, h0, c0, *ours.parameters()):
        assert t.data_ptr() in pointers
    assert out.data_ptr() in pointers  # the output is the saved top-layer buffer itself
    out.sum().backward()
    assert x.grad is not None and ours.weight_hh_l1.grad is not None


def test_in_place_change_before_backward_is_caught():
    _, ours = pair(KINDS[3])
    x, (h0,) = layer_inputs("gru", {}, False)
    x_leaf = x.detach().clone()
    out, _ = ours(x_leaf, h0)
    x_leaf.add_(1.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()
    out, _ = ours(x, h0)
    with torch.no_grad():
        ours.weight_hh_l0.mul_(2.0)
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        out.sum().backward()


def test_retain_graph_backward_twice_doubles_the_gradients():
    _, ours = pair(KINDS[2], bidirectional=True)
    x, _ = layer_inputs("lstm", {"bidirectional": True}, False)
    out, (h_n, c_n) = ours(x)
    loss = out.sum() + c_n.sum()
    loss.backward(retain_graph=True)
    first = ours.weight_ih_l0_reverse.grad.clone()
    loss.backward()
    assert torch.allclose(ours.weight_ih_l0_reverse.grad, 2 * first, rtol=1e-14, atol=0)
    assert float(first.abs().max()) > 0


def test_only_some_outputs_used():
    """Gradients of unused outputs are not materialised; the result equals torch's."""
    theirs, ours = pair(KINDS[2], num_layers=2)
    x, _ = layer_inputs("lstm", {"num_layers": 2}, False)
    (g_t,) = torch.autograd.grad(theirs(x)[1][1].sum(), x)
    (g_o,) = torch.autograd.grad(ours(x)[1][1].sum(), x)  # c_n only
    assert relative(g_o, g_t) <= 1e-12


def test_forward_without_autograd():
    """Under no_grad and inference_mode nothing is recorded, and the values are the same."""
    _, ours = pair(KINDS[2], bidirectional=True)
    x, _ = layer_inputs("lstm", {"bidirectional": True}, False)
    expected = ours(x)[0].detach()
    with torch.no_grad():
        y, _ = ours(x)
    assert y.grad_fn is None and not y.requires_grad and torch.equal(y, expected)
    with torch.inference_mode():
        y, _ = ours(x.detach())
    assert y.is_inference() and torch.equal(y, expected)


def test_deepcopy_and_torch_save():
    import copy
    import io

    _, ours = pair(KINDS[3], num_layers=2)
    x, _ = layer_inputs("gru", {}, False)
    buffer = io.BytesIO()
    torch.save(ours, buffer)
    buffer.seek(0)
    for other in (copy.deepcopy(ours), torch.load(buffer, weights_only=False)):
        assert torch.equal(other(x)[0], ours(x)[0])


def test_docstring_examples_run():
    import doctest

    import rtrl.torch.cells
    import rtrl.torch.layers

    for module in (rtrl.torch.layers, rtrl.torch.cells):
        result = doctest.testmod(module)
        assert result.attempted > 0 and result.failed == 0, module.__name__


# ---------------------------------------------------------------------------------------------
# torch.compile


COMPILE_BACKENDS = ["eager", "aot_eager", pytest.param("inductor", marks=pytest.mark.skipif(
    shutil.which("c++") is None and shutil.which("g++") is None, reason="inductor needs a C++ compiler"))]


@pytest.mark.filterwarnings("ignore:The .grad attribute of a Tensor that is not a leaf:UserWarning")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
@pytest.mark.parametrize("backend", COMPILE_BACKENDS)
def test_torch_compile_runs_with_a_graph_break(backend):
    torch.manual_seed(0)

    class Model(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lstm = rt.LSTM(3, 4, num_layers=2)
            self.cell = rt.GRUCell(4, 4)
            self.readout = torch.nn.Linear(4, 1)

        def forward(self, x):
            y, _ = self.lstm(torch.tanh(x) * 2)
            return self.readout(self.cell(y[-1], y[0])).sum()

    model = Model()
    x = torch.randn(5, 2, 3)
    eager = model(x)
    eager.backward()
    expected = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    torch._dynamo.reset()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's own notes on graph breaks
        compiled = torch.compile(model, backend=backend)
        result = compiled(x)
        result.backward()
    assert torch.allclose(result, eager, rtol=1e-6, atol=1e-7)
    for p, e in zip(model.parameters(), expected):
        assert torch.allclose(p.grad, e, rtol=1e-5, atol=1e-7)
    torch._dynamo.reset()


# ---------------------------------------------------------------------------------------------
# arguments


def test_constructor_arguments_refused_clearly():
    with pytest.raises(ValueError, match="dropout.*expected 0, got 0.5"):
        rt.LSTM(3, 4, num_layers=2, dropout=0.5)
    with pytest.raises(ValueError, match="proj_size.*expected 0"):
        rt.LSTM(3, 4, proj_size=2)
    with pytest.raises(TypeError, match="dtype: expected torch.float32 or torch.float64"):
        rt.GRU(3, 4, dtype=torch.float16)
    with pytest.raises(ValueError, match="nonlinearity"):
        rt.RNN(3, 4, nonlinearity="sigmoid")
    with pytest.raises(ValueError, match="hidden_size: expected a positive int"):
        rt.LSTMCell(3, 0)
    with pytest.raises(TypeError, match="num_layers: expected a positive int"):
        rt.GRU(3, 4, num_layers=2.0)
    with pytest.raises(TypeError, match="batch_first: expected True or False"):
        rt.LSTM(3, 4, batch_first=1)
    assert rt.RNN(3, 4, 2, "relu").nonlinearity == "relu"  # torch.nn.RNN's positional order
    assert rt.LSTM(3, 4, 1, True, True).batch_first


def test_call_arguments_refused_clearly():
    lstm = rt.LSTM(3, 4, num_layers=2)
    x = torch.randn(5, 2, 3)
    with pytest.raises(ValueError, match=r"input: expected shape \(T, B, input_size\).*got \(5, 2, 7\)"):
        lstm(torch.randn(5, 2, 7))
    with pytest.raises(ValueError, match=r"h_0: expected shape \(2, 2, 4\)"):
        lstm(x, (torch.zeros(1, 2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(ValueError, match=r"c_0: expected shape \(2, 4\).*unbatched"):
        lstm(torch.randn(5, 3), (torch.zeros(2, 4), torch.zeros(2, 2, 4)))
    with pytest.raises(TypeError, match="hx: expected a pair"):
        lstm(x, torch.zeros(2, 2, 4))
    with pytest.raises(TypeError, match="input: expected dtype torch.float32"):
        lstm(x.double())
    with pytest.raises(TypeError, match="PackedSequence"):
        lstm(torch.nn.utils.rnn.pack_padded_sequence(x, [5, 3]))
    with pytest.raises(TypeError, match="parameters: rtrl's kernels run"):
        rt.GRU(3, 4).half()(x.half())
    cell = rt.LSTMCell(3, 4)
    with pytest.raises(ValueError, match=r"input: expected shape \(B, 3\) or \(3,\)"):
        cell(torch.randn(2, 2, 3))
    with pytest.raises(ValueError, match=r"hx\[1\]: expected shape \(2, 4\)"):
        cell(torch.randn(2, 3), (torch.zeros(2, 4), torch.zeros(4)))
    with pytest.raises(TypeError, match="hx: expected a torch.Tensor"):
        rt.GRUCell(3, 4)(torch.randn(2, 3), [[0.0] * 4] * 2)


def test_float32_default_and_double_conversion():
    """Modules follow torch's dtype conversions (.double()) like torch.nn's."""
    lstm = rt.LSTM(3, 4)
    assert lstm.weight_ih_l0.dtype == torch.get_default_dtype()
    lstm.double()
    out, (h, c) = lstm(torch.randn(5, 2, 3, dtype=F64))
    assert out.dtype == F64 and c.shape == (1, 2, 4) and math.isfinite(out.sum().item())


# ---------------------------------------------------------------------------------------------
# CUDA: the same module on the device equals the CPU's (skipped without a device)


@pytest.mark.cuda
@pytest.mark.parametrize("kind", KINDS, ids=KIND_IDS)
def test_cuda_matches_cpu(kind):
    device = torch_device("cuda")
    options = dict(num_layers=2, bidirectional=True, batch_first=True)
    _, cpu = pair(kind, **options)
    _, gpu = pair(kind, device=device, **options)
    x, states = layer_inputs(kind[0], options, False)
    xg = x.detach().to(device).requires_grad_()
    sg = [s.detach().to(device).requires_grad_() for s in states]
    out_c, out_g = flat(call(cpu, kind[0], x, states)), flat(call(gpu, kind[0], xg, sg))
    grads_c = torch.autograd.grad(sum(o.sum() for o in out_c), [x, *states, *cpu.parameters()])
    grads_g = torch.autograd.grad(sum(o.sum() for o in out_g), [xg, *sg, *gpu.parameters()])
    for a, b in zip(out_g + list(grads_g), out_c + list(grads_c)):
        assert a.device.type == "cuda" and relative(a.cpu(), b) <= 1e-10
    assert rtrl.cuda_available()


# ---------------------------------------------------------------------------------------------
# the bench row


def test_layers_bench_measures_rtrl_torch_next_to_rtrl_nn():
    from rtrl.bench import layers

    row = layers.measure_layer("lstm", 4, 2, 8, repeats=1, min_time=0.001, settle=0.0, torch=torch)
    assert row["bridge_fb_ms"] > 0 and row["bridge_ratio"] == row["bridge_fb_ms"] / row["ours_fb_ms"]
    assert row["bridge_rel_diff"] <= 1e-6  # rtrl.torch's gradients are rtrl.nn's
    table = layers.format_table([row])
    assert "rtrl.torch ms" in table.splitlines()[0] and f'{row["bridge_fb_ms"]:.3f}' in table
