"""``rtrl bench``'s options and tables, at tiny sizes (timings are never asserted; the memory table's
RTRL rows are: RTRL's memory does not depend on the sequence length)."""

import importlib.util
import json

import pytest

import rtrl
from rtrl import cli
from rtrl.bench import fully_recurrent, memory

TINY_MEMORY_CASES = (("fully_recurrent", 4, 2, "rtrl"), ("lstm", 4, 1, "rtrl"))


@pytest.fixture
def tiny(monkeypatch):
    """The quick rtrl and memory tables shrunk to a few milliseconds of measuring."""
    monkeypatch.setattr(fully_recurrent, "QUICK_SIZES", (4,))
    monkeypatch.setattr(fully_recurrent, "BATCHES", (1,))
    monkeypatch.setattr(fully_recurrent, "QUICK_SETTINGS", (1, 0.002, 0.0))
    monkeypatch.setattr(memory, "QUICK_CASES", TINY_MEMORY_CASES[:1])
    monkeypatch.setattr(memory, "STEPS", (20, 60))


def test_unknown_choices_are_usage_errors(capsys):
    for argv in (["bench", "--device", "gpu"], ["bench", "--only", "nope"]):
        with pytest.raises(SystemExit) as exc:
            cli.main(argv)
        assert exc.value.code == 2
        assert "invalid choice" in capsys.readouterr().err


@pytest.mark.skipif(rtrl.cuda_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_exits_nonzero_with_the_reason(capsys):
    assert cli.main(["bench", "--quick", "--only", "rtrl", "--device", "cuda"]) == 2
    captured = capsys.readouterr()
    assert "--device cuda" in captured.err and "no usable CUDA device" in captured.err
    assert "measuring" not in captured.err  # refused before measuring anything


def test_plot_without_the_rtrl_table_is_refused(capsys, tmp_path):
    path = tmp_path / "plot.png"
    assert cli.main(["bench", "--quick", "--only", "memory", "--plot", str(path)]) == 2
    assert "--plot" in capsys.readouterr().err
    assert not path.exists()


def test_json_has_the_reference_rows_and_the_device(tiny, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "bench.json"
    assert cli.main(["bench", "--quick", "--only", "rtrl", "--device", "cpu", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    try:  # the default plot, in the current directory
        __import__("matplotlib")
    except ImportError:
        assert not (tmp_path / "rtrl-bench.png").exists()
    else:
        assert (tmp_path / "rtrl-bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "rtrl on cpu (--device cpu)" in out
    payload = json.loads(path.read_text())
    assert payload["device"] == "cpu" and "rtrl on cpu" in payload["header"]
    (row,) = payload["tables"]["rtrl"]["rows"]
    assert row["device"] == "cpu" and row["numpy_us_per_step"] > 0
    for key, module in (("torch", "torch"), ("jax", "jax")):
        assert f"{key}_us_per_step" in row and f"speedup_vs_{key}" in row
        try:
            __import__(module)
        except ImportError:
            assert row[f"{key}_us_per_step"] is None
        else:
            assert row[f"{key}_us_per_step"] > 0 and row[key]
    for title in ("torch us/step", "JAX us/step"):
        assert title in out


def test_absent_references_say_so(monkeypatch):
    monkeypatch.setattr(fully_recurrent, "torch_or_none", lambda: None)
    monkeypatch.setattr(fully_recurrent, "jax_or_none", lambda: None)
    rows = fully_recurrent.run(True, sizes=(4,), batches=(1,), repeats=1, min_time=0.002, settle=0.0)
    assert rows[0]["torch_us_per_step"] is None and rows[0]["jax_us_per_step"] is None
    table = fully_recurrent.format_table(rows)
    assert table.count("absent") == 4  # two columns, one line each
    assert "torch RTRL: absent" in table and "JAX RTRL: absent" in table


def test_plot_is_a_png(tiny, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path = tmp_path / "rtrl.png"
    assert cli.main(["bench", "--quick", "--only", "rtrl", "--device", "auto", "--plot", str(path)]) == 0
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"plot written to {path}" in capsys.readouterr().out


def test_memory_table_cli(tiny, tmp_path, capsys):
    path = tmp_path / "memory.json"
    assert cli.main(["bench", "--quick", "--only", "memory", "--json", str(path)]) == 0
    (row,) = json.loads(path.read_text())["tables"]["memory"]["rows"]
    assert row["steps"] == [20, 60] and row["learner"] == "rtrl"
    assert "peak MiB T=20" in capsys.readouterr().out


@pytest.mark.skipif(bool(rtrl.info()["cpu"]["sanitizers"]),
                    reason="ASan keeps freed memory in quarantine: the RSS is not the program's")
def test_rtrl_memory_does_not_grow_with_the_sequence_length():
    rows = memory.run(cases=TINY_MEMORY_CASES, steps=(200, 5000), chunk=100)
    for row in rows:
        assert row["memory_bytes"] > 0
        assert row["rss_ratio"] < 1.2, row
        short, long = row["run_adds_bytes"]
        assert long - short < 2 * 2**20, row  # 25 x the steps, not 25 x the memory


def test_the_approximate_learners_table(monkeypatch, capsys, tmp_path):
    from rtrl.bench import approximate

    monkeypatch.setattr(approximate, "QUICK_HIDDEN", (8,))
    monkeypatch.setattr(approximate, "QUICK_SETTINGS", (1, 0.002, 0.0))
    monkeypatch.setattr(approximate, "CELLS", ("rnn", "gru"))
    path = tmp_path / "approximate.json"
    assert cli.main(["bench", "--quick", "--only", "approximate", "--device", "cpu", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "SnAp/pass" in out and "UORO/pass" in out and "KF/sgemm" in out and "KF-RTRL" in out
    rows = json.loads(path.read_text())["tables"]["approximate"]["rows"]
    assert [r["cell"] for r in rows] == ["rnn", "gru"]
    has_torch = importlib.util.find_spec("torch") is not None
    torch_rnn = {"torch_snap", "torch_rflo", "torch_uoro", "torch_kf"} if has_torch else set()
    assert set(rows[0]["us_per_step"]) == {"snap", "eprop", "rflo", "uoro", "kf", "rtrl", "bptt", "fwd"} | torch_rnn
    assert set(rows[1]["us_per_step"]) == ({"snap", "eprop", "uoro", "rtrl", "bptt", "fwd"}  # no RFLO, KF
                                           | ({"torch_snap"} if has_torch else set()))
    assert all(v > 0 for r in rows for v in r["us_per_step"].values())
    for name in ("snap", "eprop", "rflo", "uoro", "kf"):  # each learner against a pass over its own state
        bytes_ = rtrl.memory.estimate("rnn", 32, 8, 4, learner=name)["sensitivities"]
        assert rows[0]["stream_bytes"][name] == bytes_ and rows[0]["pass_us"][name] > 0
        assert rows[0]["over_pass"][name] == rows[0]["us_per_step"][name] / rows[0]["pass_us"][name]
    assert set(rows[1]["over_pass"]) == {"snap", "eprop", "uoro"}
    H, gates = 8, 1  # KF-RTRL's product: the recurrent matrix times its factors, rnn at H = 8, B = 1
    assert rows[0]["kf_product_shape"] == [gates * H, H, gates * H] and rows[0]["kf_over_sgemm"] > 0
    assert rows[1]["kf_product_shape"] is None and rows[1]["kf_over_sgemm"] is None
