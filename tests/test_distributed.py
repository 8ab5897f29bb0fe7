"""rtrl.distributed over torch.distributed (gloo, loopback): 2 and 3 processes started here, each
bounded in time — StreamParallel against one process running all the streams (float64: 1e-12),
ShardedRTRL bit for bit against one process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402

import rtrl  # noqa: E402
import rtrl.distributed  # noqa: E402

sys.path.insert(0, str(Path(__file__).parent))
from distributed_worker import build, data, drive  # noqa: E402

WORKER = str(Path(__file__).parent / "distributed_worker.py")
pytestmark = pytest.mark.skipif(not dist.is_available(), reason="torch without torch.distributed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(spec: dict, tmp_path: Path, limit: float = 120.0) -> tuple[list[dict], list[int]]:
    spec = {**spec, "out": str(tmp_path), "port": _free_port()}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen([sys.executable, WORKER, json.dumps(spec), str(r)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(spec["world"])]
    deadline, codes, logs = time.monotonic() + limit, [], []
    for p in procs:
        try:
            logs.append(p.communicate(timeout=max(1.0, deadline - time.monotonic()))[0].decode(errors="replace"))
        except subprocess.TimeoutExpired:
            for q in procs:
                q.kill()
            pytest.fail(f"a rank did not finish within {limit} s")
        codes.append(p.returncode)
    for r, (code, log) in enumerate(zip(codes, logs)):
        if code not in (0, 2, 3):
            print(f"rank {r} exited with {code}:\n{log[-4000:]}")
    results = []
    for r in range(spec["world"]):
        path = tmp_path / f"rank{r}.npz"
        results.append(dict(np.load(path, allow_pickle=False)) if path.exists() else {})
    return results, codes


def _one_process(spec: dict):
    X, Y = data(spec)
    return drive(build(spec, spec["streams"]), X, Y, spec)


CASES = {
    "fully-recurrent-teacher-forcing-adam": dict(model="fully_recurrent", learner="rtrl", optimizer="adam"),
    "lstm-sgd": dict(model="lstm", learner="rtrl", optimizer="sgd"),
    "stacked-gru-adam-clipped": dict(model="gru", layers=2, learner="rtrl", optimizer="adam", clip=0.05),
    "lstm-epoch": dict(model="lstm", learner="rtrl", optimizer="adam", update="epoch"),
    "gru-bptt": dict(model="gru", learner="bptt", optimizer="adam"),
    "lstm-snap": dict(model="lstm", learner="snap", optimizer="adam"),
    "gru-eprop-epoch": dict(model="gru", learner="eprop", optimizer="sgd", update="epoch"),
    "lstm-uoro": dict(model="lstm", learner="uoro", optimizer="adam"),  # the signs of the global streams
    "fully-recurrent-kf": dict(model="fully_recurrent", learner="kf", optimizer="sgd"),
}


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("case", sorted(CASES))
def test_stream_parallel_equals_one_process_with_all_streams(case, world, tmp_path):
    spec = dict(CASES[case], world=world, streams=2 * world, steps=10, inputs=3, outputs=2)
    results, codes = _launch(spec, tmp_path)
    assert codes == [0] * world, [r.get("error") for r in results]
    reference, outputs = _one_process(spec)
    share = spec["streams"] // world
    for rank, r in enumerate(results):
        np.testing.assert_allclose(r["outputs"], outputs[:, rank * share:(rank + 1) * share], rtol=1e-12, atol=1e-13)
        for k, v in reference.model.parameters().items():
            np.testing.assert_allclose(r[f"param_{k}"], v, rtol=1e-12, atol=1e-13, err_msg=k)
    for k in reference.model.parameters():  # every rank holds the same bits
        for r in results[1:]:
            np.testing.assert_array_equal(r[f"param_{k}"], results[0][f"param_{k}"])


SHARDED = {
    "fully-recurrent-teacher-forcing-adam": dict(model="fully_recurrent", optimizer="adam"),
    "fully-recurrent-sgd-clipped": dict(model="fully_recurrent", optimizer="sgd", clip=0.05),
    "fully-recurrent-epoch": dict(model="fully_recurrent", optimizer="adam", update="epoch"),
    "lstm-adam": dict(model="lstm", optimizer="adam"),
    "lstm-sgd-clipped": dict(model="lstm", optimizer="sgd", clip=0.05),
    "lstm-epoch": dict(model="lstm", optimizer="adam", update="epoch"),
    "stacked-gru-adam": dict(model="gru", layers=2, optimizer="adam"),
}


@pytest.mark.parametrize("world", [2, 3])
@pytest.mark.parametrize("case", sorted(SHARDED))
def test_column_sharded_rtrl_is_bit_identical_to_one_process(case, world, tmp_path):
    spec = dict(SHARDED[case], learner="rtrl", sharded=True, world=world, streams=3, steps=10, inputs=3,
                outputs=2)
    results, codes = _launch(spec, tmp_path)
    assert codes == [0] * world, [r.get("error") for r in results]
    reference, outputs = _one_process(spec)
    for r in results:
        np.testing.assert_array_equal(r["outputs"], outputs)
        for k, v in reference.model.parameters().items():
            np.testing.assert_array_equal(r[f"param_{k}"], v, err_msg=k)


@pytest.mark.parametrize("update", ["realtime", "epoch"])
def test_a_stream_not_finite_in_one_ranks_sensitivities_is_reset_on_every_rank(update, tmp_path):
    # stream 1's sensitivity of weight row 4 (the last rank's) is NaN: that rank alone sees it, yet
    # every rank must drop the step and reset the stream, as the one process does
    spec = dict(model="fully_recurrent", learner="rtrl", optimizer="adam", update=update, sharded=True, world=2,
                streams=3, steps=10, inputs=3, outputs=2, poison=[1, 4], on_nonfinite="skip")
    results, codes = _launch(spec, tmp_path)
    assert codes == [0, 0], [r.get("error") for r in results]
    reference, outputs = _one_process(spec)
    assert (reference.stats["skipped_steps"], reference.stats["reset_streams"]) == (1, 1)
    for r in results:
        assert (int(r["skipped"]), int(r["resets"])) == (1, 1)
        np.testing.assert_array_equal(r["outputs"], outputs)
        for k, v in reference.model.parameters().items():
            np.testing.assert_array_equal(r[f"param_{k}"], v, err_msg=k)


@pytest.mark.parametrize("model", ["fully_recurrent", "lstm"])
def test_sharded_checkpoints_resume_on_each_rank_and_gather_on_one_process(model, tmp_path):
    spec = dict(model=model, layers=2, learner="rtrl", optimizer="adam", sharded=True, world=2, streams=2,
                steps=10, inputs=3, outputs=2, save_path=str(tmp_path / "ckpt-{rank}.npz"))
    results, codes = _launch(spec, tmp_path)
    assert codes == [0, 0], [r.get("error") for r in results]
    reference, outputs = _one_process({**spec, "sharded": False, "save_path": None})
    for r in results:  # saved and reloaded on each rank halfway: the uninterrupted run's bits
        np.testing.assert_array_equal(r["outputs"], outputs)
        for k, v in reference.model.parameters().items():
            np.testing.assert_array_equal(r[f"param_{k}"], v, err_msg=k)
    shards = [tmp_path / "ckpt-1.npz", tmp_path / "ckpt-0.npz"]  # any order
    with pytest.raises(rtrl.CheckpointError, match="one shard"):
        rtrl.load(shards[0])
    with pytest.raises(ValueError, match="2-rank learner has 2 files"):
        rtrl.load(shards[:1])
    gathered = rtrl.load(shards)  # the state halfway, on one process
    assert type(gathered) is rtrl.RTRL
    X, Y = data(spec)
    halfway = build(spec, spec["streams"])  # the uninterrupted learner, stopped halfway
    halfway.run(X[:5], Y[:5])
    for name, value in halfway.state_dict().items():
        if name.startswith("sensitivities") or name == "grad":
            np.testing.assert_array_equal(gathered.state_dict()[name], value, err_msg=name)
    rest = gathered.run(X[5:], Y[5:]).outputs
    np.testing.assert_array_equal(rest, outputs[5:])
    for k, v in reference.model.parameters().items():
        np.testing.assert_array_equal(gathered.model.parameters()[k], v, err_msg=k)


def test_a_shard_carries_its_rows_only():
    from rtrl.distributed import shard_rows

    assert [shard_rows(5, 2, r) for r in range(2)] == [(0, 3), (3, 2)]
    assert [shard_rows(7, 3, r) for r in range(3)] == [(0, 3), (3, 2), (5, 2)]
    full = rtrl.memory.estimate("fully_recurrent", 3, 64, 1, batch_size=2)
    half = rtrl.memory.estimate("fully_recurrent", 3, 64, 1, batch_size=2, weight_rows=32)
    assert half["sensitivities"] * 2 == full["sensitivities"]
    full = rtrl.memory.estimate("lstm", 3, 16, 1, batch_size=2, num_layers=2)
    half = rtrl.memory.estimate("lstm", 3, 16, 1, batch_size=2, num_layers=2, weight_rows=32)  # of 4 * 16
    assert half["sensitivities"] * 2 == full["sensitivities"]
    for model in ("lstm", "fully_recurrent"):
        with pytest.raises(ValueError, match="only exact RTRL"):
            rtrl.memory.estimate(model, 3, 16, 1, learner="snap", weight_rows=8)


@pytest.mark.parametrize("update", ["realtime", "epoch"])
def test_a_step_not_finite_on_one_rank_is_dropped_on_all(update, tmp_path):
    spec = dict(model="lstm", learner="rtrl", optimizer="adam", update=update, world=2, streams=4, steps=10,
                inputs=3, outputs=2, inf_at=[4, 3], on_nonfinite="skip")
    results, codes = _launch(spec, tmp_path)
    assert codes == [0, 0], [r.get("error") for r in results]
    reference, outputs = _one_process(spec)
    assert reference.stats["skipped_steps"] == 1
    assert [int(r["skipped"]) for r in results] == [1, 1]
    assert [int(r["resets"]) for r in results] == [0, 1]  # the stream with inf input is rank 1's
    for k, v in reference.model.parameters().items():
        np.testing.assert_allclose(results[0][f"param_{k}"], v, rtol=1e-12, atol=1e-13, err_msg=k)
    finite = np.isfinite(outputs)
    np.testing.assert_allclose(results[0]["outputs"], outputs[:, :2], rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(results[1]["outputs"][finite[:, 2:]], outputs[:, 2:][finite[:, 2:]],
                               rtol=1e-12, atol=1e-13)


def test_save_and_load_on_each_rank_resumes_exactly(tmp_path):
    spec = dict(model="gru", learner="rtrl", optimizer="adam", world=2, streams=4, steps=10, inputs=3,
                outputs=2, save_path=str(tmp_path / "ckpt-{rank}.npz"))
    results, codes = _launch(spec, tmp_path)
    assert codes == [0, 0], [r.get("error") for r in results]
    assert (tmp_path / "ckpt-0.npz").exists() and (tmp_path / "ckpt-1.npz").exists()
    reference, outputs = _one_process({**spec, "save_path": None})
    for k, v in reference.model.parameters().items():
        np.testing.assert_allclose(results[1][f"param_{k}"], v, rtol=1e-12, atol=1e-13, err_msg=k)
    np.testing.assert_allclose(results[1]["outputs"], outputs[:, 2:], rtol=1e-12, atol=1e-13)


def test_ranks_with_different_models_are_refused_on_every_rank(tmp_path):
    spec = dict(model="lstm", learner="rtrl", optimizer="sgd", world=2, streams=4, steps=4, inputs=3, outputs=2,
                mismatch_rank=1)
    results, codes = _launch(spec, tmp_path)
    assert codes == [2, 2]
    for r in results:
        assert str(r["error"]).startswith("ValueError") and "ranks [1]" in str(r["error"])


def test_a_rank_that_dies_makes_the_others_fail_within_the_timeout(tmp_path):
    spec = dict(model="lstm", learner="rtrl", optimizer="sgd", world=2, streams=4, steps=4, inputs=3, outputs=2,
                die=1, timeout=5)
    start = time.monotonic()
    results, codes = _launch(spec, tmp_path, limit=90)
    assert codes[1] == 3 and codes[0] == 2, codes
    assert "error" in results[0] and time.monotonic() - start < 90


def test_without_a_process_group_or_with_a_gpu_learner_it_says_so():
    learner = rtrl.RTRL(rtrl.RecurrentNet("rnn", 2, 3, 1, device="cpu"), lr=0.1)
    if not dist.is_initialized():
        with pytest.raises(RuntimeError, match="init_process_group"):
            rtrl.distributed.StreamParallel(learner)
    with pytest.raises(TypeError, match="learner"):
        rtrl.distributed.StreamParallel(learner.model)
