"""What a learner needs in memory, said before it allocates: rtrl.memory.estimate, the refusal of a
learner that would not fit, ``rtrl info --memory``, and RTRL's independence of the sequence length."""

import contextlib
import io

import numpy as np
import pytest

import rtrl
from rtrl import cli
from rtrl.memory import estimate, format_bytes, of_learner

OPTIMIZERS = [None, rtrl.optim.SGD(0.1), rtrl.optim.SGD(0.1, momentum=0.9), rtrl.optim.Adam(0.01)]


def models():
    yield rtrl.FullyRecurrent(7, 3, n_outputs=2, device="cpu")
    yield rtrl.FullyRecurrent(5, 0, bias=False, device="cpu", dtype="float64")
    for cell in ("rnn", "lstm", "gru"):
        yield rtrl.RecurrentNet(cell, 3, 6, 2, device="cpu")


@pytest.mark.parametrize("model", list(models()), ids=repr)
@pytest.mark.parametrize("optimizer", OPTIMIZERS, ids=["none", "sgd", "momentum", "adam"])
@pytest.mark.parametrize("batch_size", [1, 4])
def test_estimate_is_what_the_learner_holds(model, optimizer, batch_size):
    learner = rtrl.RTRL(model, optimizer=optimizer, batch_size=batch_size)
    rows = learner._native_optimizer.state_rows if optimizer is not None else None
    need = of_learner(model, "rtrl", batch_size, rows)
    assert need["learner"] == learner.memory_bytes()
    state = learner.state_dict()
    assert need["sensitivities"] == sum(state[k].nbytes for k in state if k.startswith("sensitivities"))


def test_estimate_by_sizes_matches_the_model():
    net = rtrl.RecurrentNet("lstm", 8, 32, 3, device="cpu")
    assert estimate("lstm", 8, 32, 3, batch_size=2, optimizer="adam") == of_learner(net, "rtrl", 2, 2)
    n, m, B = 16, 4, 3
    need = estimate("fully_recurrent", m, n, batch_size=B, dtype="float64", optimizer="none")
    assert need["sensitivities"] == n * B * n * (m + 1 + n) * 8
    assert need["parameters"] == need["gradient"] == n * (m + 1 + n) * 8
    assert need["optimizer_state"] == 0


def test_rtrl_memory_does_not_grow_with_time_but_bptt_does():
    rtrl_need = estimate("gru", 4, 16, 1, batch_size=2)
    short = estimate("gru", 4, 16, 1, batch_size=2, learner="bptt", steps=100)
    long = estimate("gru", 4, 16, 1, batch_size=2, learner="bptt", steps=10_000)
    assert long["workspace"] > 50 * short["workspace"]
    assert long["learner"] == short["learner"] < rtrl_need["learner"]
    learner = rtrl.RTRL(rtrl.RecurrentNet("gru", 4, 16, 1, device="cpu"), lr=0.01, batch_size=2)
    before = learner.memory_bytes()
    learner.run(np.zeros((500, 2, 4)), np.zeros((500, 2, 1)))
    assert learner.memory_bytes() == before == rtrl_need["learner"]


def test_a_learner_that_would_not_fit_is_refused_before_allocating(monkeypatch):
    net = rtrl.RecurrentNet("lstm", 8, 64, 1, device="cpu")
    need = of_learner(net, "rtrl", 4, 0)
    monkeypatch.setattr(rtrl.memory, "available_bytes", lambda device: need["total"] - 1)
    with pytest.raises(MemoryError, match=r"needs [0-9.]+ MiB \(.*sensitivities [0-9.]+ MiB.*available on cpu"):
        rtrl.RTRL(net, lr=0.1, batch_size=4)
    monkeypatch.setattr(rtrl.memory, "available_bytes", lambda device: need["total"])
    assert rtrl.RTRL(net, lr=0.1, batch_size=4).memory_bytes() == need["learner"]


def test_epoch_mode_needs_no_update_copy():
    realtime = estimate("gru", 4, 8, 1, optimizer="adam")
    epoch = estimate("gru", 4, 8, 1, optimizer="adam", update="epoch")
    assert realtime["workspace"] - epoch["workspace"] == 3 * realtime["parameters"]


@pytest.mark.parametrize("kwargs, match", [
    (dict(model="transformer"), "model"),
    (dict(learner="rtrl2"), "learner"),
    (dict(optimizer="rmsprop"), "optimizer"),
    (dict(learner="bptt"), "steps"),
    (dict(batch_size=0), "batch_size"),
    (dict(output_size=-1), "output_size"),
    (dict(input_size=-1), "input_size"),
    (dict(model="lstm", output_size=None), "output_size"),
])
def test_estimate_rejects_bad_arguments(kwargs, match):
    args = dict(model="gru", input_size=2, hidden_size=3, output_size=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        estimate(args.pop("model"), args.pop("input_size"), args.pop("hidden_size"), args.pop("output_size"), **args)


def test_estimate_refuses_sizes_beyond_32_bit_indices():
    with pytest.raises(ValueError, match="32-bit"):
        estimate("fully_recurrent", 10, 20_000, batch_size=20)


def run_cli(*argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_info_memory_prints_the_estimate():
    code, out, _ = run_cli("info", "--memory", "lstm", "--inputs", "8", "--hidden", "64", "--outputs", "2",
                           "--batch-size", "4", "--optimizer", "adam")
    assert code == 0
    need = estimate("lstm", 8, 64, 2, batch_size=4, optimizer="adam")
    for part in ("sensitivities", "optimizer_state", "workspace", "total"):
        line = next(li for li in out.splitlines() if li.strip().startswith(part))
        assert format_bytes(need[part]) in line
    assert "independent of the sequence length" in out


def test_info_memory_errors():
    code, _, err = run_cli("info", "--memory", "gru", "--hidden", "8")
    assert code == 2 and "--inputs" in err
    code, _, err = run_cli("info", "--memory", "gru", "--inputs", "2", "--hidden", "8")
    assert code == 2 and "output_size" in err
