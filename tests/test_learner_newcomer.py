"""What a newcomer meets first in Python: a checkpoint path that cannot be written names the user's
path, before anything is written; results compare by value; a learner's ``repr`` says what it is."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import rtrl


# -- checkpoints -----------------------------------------------------------------------------------
def _learner() -> rtrl.RTRL:
    return rtrl.RTRL(rtrl.FullyRecurrent(3, 1, n_outputs=1, seed=0, device="cpu"), lr=0.5)


def test_save_into_a_missing_directory_names_the_path(tmp_path):
    path = tmp_path / "missing" / "dir" / "x.npz"
    with pytest.raises(FileNotFoundError) as exc:
        _learner().save(path)
    assert exc.value.filename == str(path) and str(path) in str(exc.value)
    assert "no directory" in str(exc.value) and ".rtrl-" not in str(exc.value) and ".tmp" not in str(exc.value)
    assert list(tmp_path.iterdir()) == []


def test_save_onto_a_directory_or_under_a_file_names_the_path(tmp_path):
    with pytest.raises(IsADirectoryError) as exc:
        _learner().save(tmp_path)
    assert exc.value.filename == str(tmp_path)
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError) as exc:
        _learner().save(tmp_path / "file" / "x.npz")
    assert exc.value.filename == str(tmp_path / "file" / "x.npz") and "is not a directory" in str(exc.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_save_still_writes_where_it_can(tmp_path):
    learner = _learner()
    learner.run(np.zeros((5, 1)), np.full((5, 1), 0.5))
    learner.save(Path(tmp_path) / "x.npz")
    assert rtrl.load(tmp_path / "x.npz").steps == 5
    assert [p.name for p in tmp_path.iterdir()] == ["x.npz"]


# -- RunResult == and repr(learner) ------------------------------------------------------------------
def test_run_results_compare_by_value():
    X, D = np.zeros((20, 1)), np.tile([[0.2], [0.8]], (10, 1))
    a, b = _learner().run(X, D), _learner().run(X, D)
    assert a is not b and a == b and not (a != b)
    assert isinstance(a == b, bool)
    c = rtrl.RunResult(a.outputs.copy(), a.loss.copy())
    c.outputs[3, 0] += 1e-6
    assert a != c
    assert a != rtrl.RunResult(a.outputs[:-1], a.loss[:-1])          # shapes differ
    assert a != rtrl.RunResult(a.outputs.tolist(), a.loss)           # not the same kind of array
    assert (a == "outputs") is False and a != None                   # noqa: E711
    nan = rtrl.RunResult(np.array([[np.nan]]), np.array([np.nan]))
    assert nan == rtrl.RunResult(np.array([[np.nan]]), np.array([np.nan]))
    assert nan != rtrl.RunResult(np.array([[0.0]]), np.array([np.nan]))
    assert rtrl.RunResult(None, None) == rtrl.RunResult(None, None) != nan
    with pytest.raises(TypeError):
        hash(a)


def test_learner_repr_says_what_it_is():
    net = rtrl.FullyRecurrent(3, 1, n_outputs=1, seed=0, device="cpu")
    learner = rtrl.RTRL(net, optimizer=rtrl.optim.Adam(1e-3), update="epoch", batch_size=2, teacher_forcing=True)
    text_ = repr(learner)
    assert text_.startswith(f"RTRL({net!r}, optimizer=Adam(lr=0.001")
    for part in ("update='epoch'", "loss='mse'", "teacher_forcing=True", "batch_size=2", "steps=0"):
        assert part in text_
    learner.run(np.zeros((7, 2, 1)))
    assert repr(learner).endswith("batch_size=2, steps=7)")

    lstm = rtrl.RecurrentNet("lstm", 2, 4, 1, seed=0, device="cpu")
    bptt = rtrl.BPTT(lstm, truncation=8, lr=0.1, loss="mse", clip_grad_norm=1.0)
    assert repr(bptt) == (f"BPTT({lstm!r}, optimizer=SGD(lr=0.1, momentum=0.0), truncation=8, loss='mse', "
                          "clip_grad_norm=1.0, batch_size=1, steps=0)")
    assert "optimizer=None" in repr(rtrl.RTRL(net))
