"""Hostile and damaged checkpoints: every load of a file that is not a good checkpoint raises
rtrl.CheckpointError (a ValueError naming the path and the member) within a time and memory bound,
and a load that succeeds gives exactly the saved learner. Saves clean up after killed saves."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import rtrl
from rtrl import checkpoint as ckpt

TIME_BOUND_S = 5.0  # generous: each of these loads takes milliseconds when bounded
MEMORY_BOUND = 64 << 20


def _learner():
    net = rtrl.RecurrentNet("lstm", 2, 3, 2, seed=0, device="cpu")
    learner = rtrl.RTRL(net, optimizer=rtrl.optim.Adam(0.01), batch_size=2)
    rng = np.random.default_rng(0)
    learner.run(rng.normal(size=(6, 2, 2)), rng.uniform(size=(6, 2, 2)))
    return learner


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """(stored checkpoint bytes, deflated checkpoint bytes, the saved state)."""
    directory = tmp_path_factory.mktemp("good")
    learner = _learner()
    learner.save(directory / "a.npz")
    stored = (directory / "a.npz").read_bytes()
    with np.load(directory / "a.npz") as data:
        arrays = {k: data[k] for k in data.files}
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    return stored, buffer.getvalue(), learner.state_dict()


def _members(data: bytes) -> dict:
    with np.load(io.BytesIO(data)) as npz:
        return {k: npz[k] for k in npz.files}


def _header_of(data: bytes) -> dict:
    return json.loads(bytes(_members(data)["__header__"]).decode())


def _npz(arrays: dict, header: dict | bytes | None = None) -> bytes:
    arrays = dict(arrays)
    if header is not None:
        raw = header if isinstance(header, bytes) else json.dumps(header).encode()
        arrays["__header__"] = np.frombuffer(raw, np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def _same_state(a: dict, b: dict) -> bool:
    if a.keys() != b.keys():
        return False
    for k in a:
        if k == "parameters":
            if not all(np.array_equal(a[k][n], b[k][n]) for n in a[k]):
                return False
        elif hasattr(a[k], "shape"):
            if not np.array_equal(a[k], b[k]):
                return False
        elif a[k] != b[k]:
            return False
    return True


def _load_bounded(path, **kwargs):
    """rtrl.load(path) measured: (learner or the CheckpointError, seconds, peak traced bytes)."""
    tracemalloc.start()
    start = time.perf_counter()
    try:
        result = rtrl.load(path, **kwargs)
    except rtrl.CheckpointError as exc:
        result = exc
    finally:
        seconds = time.perf_counter() - start
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    return result, seconds, peak


def _expect_error(path, member=None, match=None, **kwargs):
    result, seconds, peak = _load_bounded(path, **kwargs)
    assert isinstance(result, rtrl.CheckpointError), f"loaded: {result!r}"
    assert isinstance(result, ValueError)
    assert result.path == os.fspath(path) and os.fspath(path) in str(result)
    if member is not None:
        assert result.member == member, (result.member, str(result))
        assert repr(member) in str(result)
    if match is not None:
        assert match in str(result), str(result)
    assert seconds < TIME_BOUND_S, seconds
    assert peak < MEMORY_BOUND, peak
    return result


# -- fuzzing ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", ["stored", "deflated"])
def test_bit_flips_raise_checkpoint_error_or_load_exactly(good, tmp_path, variant):
    data = good[0] if variant == "stored" else good[1]
    rng = np.random.default_rng(7)
    path = tmp_path / "flipped.npz"
    outcomes = {"error": 0, "loaded": 0}
    for position in rng.choice(len(data) * 8, size=120, replace=False):
        flipped = bytearray(data)
        flipped[position // 8] ^= 1 << (position % 8)
        path.write_bytes(bytes(flipped))
        result, seconds, peak = _load_bounded(path)
        assert seconds < TIME_BOUND_S and peak < MEMORY_BOUND, (position, seconds, peak)
        if isinstance(result, rtrl.CheckpointError):
            assert os.fspath(path) in str(result)
            outcomes["error"] += 1
        else:  # a flip in bytes nothing reads (a zip field such as the creating system)
            assert _same_state(result.state_dict(), good[2]), f"bit {position} changed the learner silently"
            outcomes["loaded"] += 1
    assert outcomes["error"] > 60, outcomes


@pytest.mark.parametrize("variant", ["stored", "deflated"])
def test_truncations_raise_checkpoint_error(good, tmp_path, variant):
    data = good[0] if variant == "stored" else good[1]
    path = tmp_path / "short.npz"
    for length in sorted({0, 1, 4, 22, 30, 100, *np.linspace(0, len(data) - 1, 40).astype(int)}):
        path.write_bytes(data[:length])
        _expect_error(path)


def test_random_bytes_and_other_files(tmp_path):
    path = tmp_path / "x.npz"
    for content in (np.random.default_rng(1).bytes(5000), b"PK\x03\x04" + bytes(100), b"\x93NUMPY" + bytes(60)):
        path.write_bytes(content)
        _expect_error(path)
    np.save(tmp_path / "plain.npy", np.zeros(3))
    _expect_error(tmp_path / "plain.npy")
    (tmp_path / "dir.npz").mkdir()
    _expect_error(tmp_path / "dir.npz")
    with pytest.raises(FileNotFoundError):
        rtrl.load(tmp_path / "absent.npz")


# -- altered headers ---------------------------------------------------------------------------------------
def _altered(header, change):
    header = json.loads(json.dumps(header))
    change(header)
    return header


HEADER_CHANGES = {
    "hidden_size-9000": lambda h: h["model"]["config"].update(hidden_size=9000),
    "input_size-2**40": lambda h: h["model"]["config"].update(input_size=2**40),
    "batch_size-2**31": lambda h: h["learner"]["config"].update(batch_size=2**31),
    "hidden_size-string": lambda h: h["model"]["config"].update(hidden_size="3"),
    "hidden_size-huge-int": lambda h: h["model"]["config"].update(hidden_size=10**300),
    "dtype-int": lambda h: h["model"]["config"].update(dtype="int32"),
    "cell-unknown": lambda h: h["model"]["config"].update(cell="transformer"),
    "model-class": lambda h: h["model"].update({"class": "os.system"}),
    "learner-class": lambda h: h["learner"].update({"class": "Popen"}),
    "extra-config": lambda h: h["model"]["config"].update(evil=1),
    "config-list": lambda h: h["model"].update(config=[1, 2]),
    "lr-negative": lambda h: h["learner"]["config"]["optimizer"].update(lr=-1),
    "lr-inf": lambda h: h["learner"]["config"]["optimizer"].update(lr=1e309),
    "optimizer-kind": lambda h: h["learner"]["config"]["optimizer"].update(kind="rmsprop"),
    "optimizer-list": lambda h: h["learner"]["config"].update(optimizer=[1]),
    "steps-2**63": lambda h: h["counters"].update(steps=2**63),
    "steps-float": lambda h: h["counters"].update(steps=1.5),
    "pending-missing": lambda h: h["counters"].pop("pending"),
    "stats-missing": lambda h: h["counters"].pop("stats"),
    "counters-extra": lambda h: h["counters"].update(extra=0),
    "version-0": lambda h: h.update(version=0),
    "version-future": lambda h: h.update(version=2),
    "format": lambda h: h.update(format="other"),
    "no-model": lambda h: h.pop("model"),
}


@pytest.mark.parametrize("name", list(HEADER_CHANGES))
def test_altered_header_raises_checkpoint_error(good, tmp_path, name):
    arrays = _members(good[0])
    path = tmp_path / "altered.npz"
    path.write_bytes(_npz({k: v for k, v in arrays.items() if k != "__header__"},
                          _altered(_header_of(good[0]), HEADER_CHANGES[name])))
    _expect_error(path, member="__header__")


def test_fully_recurrent_init_scale_overflow_in_header(tmp_path):
    net = rtrl.FullyRecurrent(3, 1, seed=0, dtype="float64", device="cpu")
    learner = rtrl.BPTT(net, lr=0.1)
    learner.save(tmp_path / "fr.npz")
    data = (tmp_path / "fr.npz").read_bytes()
    header = _altered(_header_of(data), lambda h: h["model"]["config"].update(init_scale=1e308))
    (tmp_path / "bad.npz").write_bytes(_npz({k: v for k, v in _members(data).items() if k != "__header__"}, header))
    _expect_error(tmp_path / "bad.npz", member="__header__", match="init_scale")


def test_model_larger_than_the_cap_is_refused_before_allocation(good, tmp_path):
    arrays = {k: v for k, v in _members(good[0]).items() if k != "__header__"}
    header = _altered(_header_of(good[0]), lambda h: h["learner"].update({"class": "BPTT"}))
    header["learner"]["config"].pop("update")
    header["model"]["config"]["hidden_size"] = 2000  # 4 * 2000 * 2004 weights: 64 MB of parameters
    path = tmp_path / "big.npz"
    path.write_bytes(_npz(arrays, header))
    _expect_error(path, member="__header__", match="max_bytes", max_bytes=16 << 20)
    assert rtrl.load(_save_small(tmp_path), max_bytes=16 << 20).steps == 0  # a small model passes the cap
    with pytest.raises(ValueError, match="max_bytes"):
        rtrl.load(path, max_bytes=-1)


def _save_small(tmp_path):
    learner = rtrl.BPTT(rtrl.FullyRecurrent(2, 1, seed=0, device="cpu"), lr=0.1)
    learner.save(tmp_path / "small.npz")
    return tmp_path / "small.npz"


def test_deeply_nested_and_huge_headers(good, tmp_path):
    arrays = {k: v for k, v in _members(good[0]).items() if k != "__header__"}
    path = tmp_path / "nested.npz"
    path.write_bytes(_npz(arrays, b"[" * 100_000 + b"]" * 100_000))
    _expect_error(path, member="__header__")
    path.write_bytes(_npz(arrays, b" " * (ckpt.MAX_HEADER_BYTES + 1)))
    _expect_error(path, member="__header__", match="expected at most")
    path.write_bytes(_npz(arrays, b"\xff\xfe\x00"))
    _expect_error(path, member="__header__")
    arrays["__header__"] = np.zeros((2, 2), np.uint8)  # a header of the wrong shape
    path.write_bytes(_npz(arrays))
    _expect_error(path, member="__header__")


# -- altered members ------------------------------------------------------------------------------------
def _with_member(data: bytes, name: str, payload: bytes, compress=zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO(data)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zipfile warns about a duplicate name
        with zipfile.ZipFile(buffer, "a", compression=compress) as z:
            z.writestr(name, payload)
    return buffer.getvalue()


def _npy(arr: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, arr, allow_pickle=False)
    return buffer.getvalue()


def test_duplicate_member_is_refused(good, tmp_path):
    arrays = _members(good[0])
    path = tmp_path / "dup.npz"
    path.write_bytes(_with_member(good[0], "state_h.npy", _npy(np.zeros_like(arrays["state_h"]))))
    _expect_error(path, member="state_h", match="twice")


@pytest.mark.parametrize("name, arr, message", [
    ("state_h", np.zeros((3, 2), np.float32), "declares shape (3, 2), expected (2, 3)"),
    ("state_h", np.zeros((2, 3), np.float64), "declares dtype <f8, expected float32"),
    ("state_h", np.zeros((2, 3), np.int32), "declares dtype"),
    ("state_h", np.full((2, 3), np.nan, np.float32), "non-finite"),
    ("parameters/weight_out", np.zeros((2, 4), np.float32), "declares shape"),
    ("grad", np.zeros(10**6, np.float32), "declares shape (1000000,)"),
], ids=["shape", "float64", "int", "nan", "parameter-shape", "huge"])
def test_member_with_wrong_declared_header_is_refused(good, tmp_path, name, arr, message):
    arrays = _members(good[0])
    arrays[name] = arr
    path = tmp_path / "member.npz"
    path.write_bytes(_npz(arrays))
    _expect_error(path, member=name, match=message)


def test_unknown_and_missing_members(good, tmp_path):
    arrays = _members(good[0])
    path = tmp_path / "m.npz"
    path.write_bytes(_npz({**arrays, "surprise": np.zeros(3)}))
    _expect_error(path, member="surprise", match="unknown member")
    path.write_bytes(_npz({k: v for k, v in arrays.items() if k != "sensitivities_c"}))
    _expect_error(path, member="sensitivities_c", match="missing member")
    trap = np.empty(1, dtype=object)
    path.write_bytes(_npz({**arrays, "state_h": trap}))
    _expect_error(path, member="state_h")


def test_member_longer_than_its_header_declares(good, tmp_path):
    arrays = _members(good[0])
    path = tmp_path / "long.npz"
    data = _npz({k: v for k, v in arrays.items() if k != "state_h"})
    path.write_bytes(_with_member(data, "state_h.npy", _npy(arrays["state_h"]) + bytes(1 << 20)))
    _expect_error(path, member="state_h", match="bytes, its header declares")


def test_zip_bomb_member_is_refused_unread(good, tmp_path):
    """An extra 256 MiB member of zeros, deflated to a few hundred KB: refused without inflating."""
    bomb = tmp_path / "bomb.npz"
    buffer = io.BytesIO(good[0])
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("padding.npy", "w", force_zip64=True) as f:
            chunk = bytes(16 << 20)
            for _ in range(16):
                f.write(chunk)
    bomb.write_bytes(buffer.getvalue())
    assert bomb.stat().st_size < 4 << 20
    _expect_error(bomb, member="padding", match="unknown member")


def test_bomb_in_an_expected_member_is_bounded(good, tmp_path):
    """The real member, deflated, with 256 MiB of zeros appended: refused from its declared size."""
    arrays = _members(good[0])
    buffer = io.BytesIO(_npz({k: v for k, v in arrays.items() if k != "state_h"}))
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as z:
        with z.open("state_h.npy", "w", force_zip64=True) as f:
            f.write(_npy(arrays["state_h"]))
            chunk = bytes(16 << 20)
            for _ in range(16):
                f.write(chunk)
    path = tmp_path / "bomb2.npz"
    path.write_bytes(buffer.getvalue())
    _expect_error(path, member="state_h")


def test_corrupted_deflate_stream_is_wrapped(good, tmp_path):
    arrays = _members(good[0])
    data = _npz({k: v for k, v in arrays.items() if k != "state_h"})
    payload = zlib.compress(_npy(arrays["state_h"]))
    buffer = io.BytesIO(data)
    with zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr("state_h.npy", _npy(arrays["state_h"]))
    raw = bytearray(buffer.getvalue())
    start = raw.rfind(b"state_h.npy", 0, len(raw) - 200) + len(b"state_h.npy")
    for offset in range(4, min(len(payload), 40)):
        raw[start + offset] ^= 0xFF
    path = tmp_path / "inflate.npz"
    path.write_bytes(bytes(raw))
    error = _expect_error(path, member="state_h")
    assert error.__cause__ is None and error.__suppress_context__


def test_checkpoint_error_is_picklable(good, tmp_path):
    import pickle

    path = tmp_path / "x.npz"
    path.write_bytes(b"nothing")
    with pytest.raises(rtrl.CheckpointError) as info:
        rtrl.load(path)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is rtrl.CheckpointError and str(again) == str(info.value) and again.path == str(path)


def test_good_checkpoints_still_load_exactly(good, tmp_path):
    for data in good[:2]:
        path = tmp_path / "good.npz"
        path.write_bytes(data)
        assert _same_state(rtrl.load(path).state_dict(), good[2])


# -- saving ------------------------------------------------------------------------------------------------
def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_save_removes_stale_temp_files_of_the_same_path(tmp_path):
    learner = _learner()
    path = tmp_path / "a.npz"
    prefix = ckpt._temp_prefix(os.fspath(path))
    stale = tmp_path / f"{prefix}{_dead_pid()}-abc123.npz.tmp"
    live = tmp_path / f"{prefix}{os.getppid()}-def456.npz.tmp"  # a running process's save
    other = tmp_path / f"{ckpt._temp_prefix(os.fspath(tmp_path / 'b.npz'))}{_dead_pid()}-x.npz.tmp"
    for f in (stale, live, other):
        f.write_bytes(b"PK half")
    learner.save(path)
    assert not stale.exists() and live.exists() and other.exists()
    assert rtrl.load(path).steps == learner.steps


def test_save_killed_mid_write_is_cleaned_up_by_the_next_save(tmp_path):
    path = tmp_path / "killed.npz"
    script = textwrap.dedent(f"""
        import time, numpy as np, rtrl
        def hang(file, *args, **kwargs):
            file.write(b"PK partial")
            file.flush()
            time.sleep(60)
        np.savez = hang
        rtrl.BPTT(rtrl.FullyRecurrent(2, 1, device="cpu"), lr=0.1).save({os.fspath(path)!r})
    """)
    child = subprocess.Popen([sys.executable, "-c", script])
    try:
        deadline = time.monotonic() + 30
        while not [n for n in os.listdir(tmp_path) if n.endswith(".npz.tmp")]:
            assert time.monotonic() < deadline and child.poll() is None, "the child never started saving"
            time.sleep(0.05)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert len([n for n in os.listdir(tmp_path) if n.endswith(".npz.tmp")]) == 1
    _learner().save(path)
    assert os.listdir(tmp_path) == ["killed.npz"]


def test_save_errors_name_the_users_path(tmp_path, monkeypatch):
    def full(file, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    path = tmp_path / "mine.npz"
    with pytest.raises(OSError) as info:
        _learner().save(path)
    assert info.value.errno == errno.ENOSPC and info.value.filename == os.fspath(path)
    assert ".tmp" not in str(info.value) and os.fspath(path) in str(info.value)
    assert os.listdir(tmp_path) == []
