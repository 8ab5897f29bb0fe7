"""The context's reductions (rtrl/reduce.hpp): row sums, column sums and the 2-norm, through the
`_reduce` test hook of each backend module.

The CPU backend sums serially in increasing index (its order since its first release: equal bit for bit
to NumPy's sequential cumsum); the SIMT host backend and the CUDA backend sum in the fixed tree order
(lanes striding over the values, each block folded in halves, then the blocks' partial sums), equal bit
for bit to `tree_sum` below. Both orders give the same bits on every call, and stay within the
worst-case rounding bound of the exact (math.fsum) sum; integer-valued data, whose sums every order
gets exactly, must come out exact. The context's transpose (tiled on CUDA) is checked here too."""

import math

import numpy as np
import pytest

from rtrl import _rtrl_cpu, _rtrl_simt

THREADS, BLOCKS, LANE_ITEMS = 256, 256, 8  # reduce.hpp
MODULES = {"cpu": _rtrl_cpu, "simt": _rtrl_simt}
# one block (n <= 2048), several, and the block cap reached (n > 256 * 2048)
LENGTHS = [1, 7, 255, 2048, 2049, 10_001, 600_000]


def tree_sum(x):
    """The tree order of reduce.hpp for the values x, in x's dtype."""
    n, dtype = len(x), x.dtype
    blocks = min(BLOCKS, max(1, -(-n // (THREADS * LANE_ITEMS))))
    width = blocks * THREADS
    padded = np.zeros(-(-n // width) * width, dtype)
    padded[:n] = x
    lanes = np.zeros(width, dtype)
    for row in padded.reshape(-1, width):
        lanes = lanes + row
    values = lanes.reshape(blocks, THREADS).copy()
    partial = fold(values)
    if blocks == 1:
        return partial[0]
    values = np.zeros((1, THREADS), dtype)
    values[0, :blocks] = partial
    return fold(values)[0]


def fold(values):
    """Each row of values [rows, THREADS] folded in halves (value t += value t + w, w = 128, ..., 1)."""
    w = THREADS // 2
    while w > 0:
        values[:, :w] = values[:, :w] + values[:, w:2 * w]
        w //= 2
    return values[:, 0].copy()


def reduce(module, kind, x, out=None, scale=1.0, accumulate=False):
    size = {"row_sums": x.shape[0], "column_sums": x.shape[1], "norm2": 1}[kind]
    out = np.zeros(size, x.dtype) if out is None else out.copy()
    module._reduce(kind, x, out, scale, accumulate)
    return out


def data(shape, dtype, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(shape) * np.exp(rng.uniform(-4, 4, shape))).astype(dtype)


def rounding_bound(values, dtype):
    """|computed - exact| for any order of n - 1 additions of these values."""
    return len(values) * np.finfo(dtype).eps * math.fsum(abs(float(v)) for v in values)


@pytest.mark.parametrize("backend", sorted(MODULES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", LENGTHS)
def test_sums_within_rounding_of_the_exact_sum_and_exact_on_integers(backend, dtype, n):
    module = MODULES[backend]
    x = data((2, n), dtype, seed=n)
    rows = reduce(module, "row_sums", x, scale=0.5)
    cols = reduce(module, "column_sums", np.ascontiguousarray(x.T))
    for r in range(2):
        exact = math.fsum(map(float, x[r]))
        assert abs(float(rows[r]) - 0.5 * exact) <= 0.5 * rounding_bound(x[r], dtype) * 1.01
        assert abs(float(cols[r]) - exact) <= rounding_bound(x[r], dtype) * 1.01
    norm = reduce(module, "norm2", x[:1])
    exact = math.sqrt(math.fsum(float(v) ** 2 for v in x[0]))
    assert abs(float(norm[0]) - exact) <= exact * (n + 2) * np.finfo(dtype).eps
    ints = np.random.default_rng(1).integers(-16, 17, (2, n)).astype(dtype)  # every partial sum exact
    exact = ints.astype(np.int64).sum(1)
    np.testing.assert_array_equal(reduce(module, "row_sums", ints), exact)
    np.testing.assert_array_equal(reduce(module, "column_sums", np.ascontiguousarray(ints.T)), exact)
    if dtype == "float64":  # the sum of squares exact too: the norm is its correctly rounded root
        squares = (ints[0].astype(np.int64) ** 2).sum()
        np.testing.assert_array_equal(reduce(module, "norm2", ints[:1]), np.sqrt(np.float64(squares)))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", LENGTHS)
def test_cpu_sums_serially_in_increasing_index(dtype, n):
    x = data((3, n), dtype, seed=n)
    serial = np.cumsum(x, axis=1)[:, -1]
    np.testing.assert_array_equal(reduce(_rtrl_cpu, "row_sums", x, scale=0.25), np.asarray(0.25, dtype) * serial)
    start = data(3, dtype, seed=9)
    np.testing.assert_array_equal(
        reduce(_rtrl_cpu, "column_sums", np.ascontiguousarray(x.T), out=start, accumulate=True), start + serial)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n", LENGTHS)
def test_simt_sums_in_the_cuda_tree_order(dtype, n):
    x = data((3, n), dtype, seed=n)
    tree = np.array([tree_sum(row) for row in x], dtype)
    np.testing.assert_array_equal(reduce(_rtrl_simt, "row_sums", x, scale=0.25), np.asarray(0.25, dtype) * tree)
    start = data(3, dtype, seed=9)
    np.testing.assert_array_equal(
        reduce(_rtrl_simt, "column_sums", np.ascontiguousarray(x.T), out=start, accumulate=True), start + tree)
    if n > THREADS * LANE_ITEMS:  # the tree order is not the serial one: the test can tell them apart
        assert not np.array_equal(tree, np.cumsum(x, axis=1)[:, -1])


@pytest.mark.parametrize("backend", sorted(MODULES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_the_same_bits_on_every_call_and_for_any_number_of_sequences(backend, dtype):
    module = MODULES[backend]
    x = data((5, 70_001), dtype)
    first = [reduce(module, kind, x) for kind in ("row_sums", "norm2")]
    first.append(reduce(module, "column_sums", np.ascontiguousarray(x.T)))
    for _ in range(3):
        np.testing.assert_array_equal(reduce(module, "row_sums", x), first[0])
        np.testing.assert_array_equal(reduce(module, "norm2", x), first[1])
        np.testing.assert_array_equal(reduce(module, "column_sums", np.ascontiguousarray(x.T)), first[2])
    # a sequence's order depends on its length alone, not on how many are reduced with it
    for r in range(5):
        np.testing.assert_array_equal(reduce(module, "row_sums", x[r:r + 1].copy()), first[0][r:r + 1])


@pytest.mark.parametrize("backend", sorted(MODULES))
def test_empty_sequences_sum_to_zero_and_nonfinite_values_propagate(backend):
    module = MODULES[backend]
    np.testing.assert_array_equal(reduce(module, "row_sums", np.zeros((3, 0))), np.zeros(3))
    np.testing.assert_array_equal(reduce(module, "norm2", np.zeros((1, 0))), np.zeros(1))
    x = data((2, 5000), "float64")
    x[0, 4321] = np.nan
    x[1, 17] = np.inf
    rows = reduce(module, "row_sums", x)
    assert np.isnan(rows[0]) and rows[1] == np.inf
    assert np.isnan(reduce(module, "norm2", x[:1])[0]) and reduce(module, "norm2", x[1:])[0] == np.inf


def test_unknown_kind_and_wrong_shapes_are_refused():
    x = np.zeros((2, 3))
    with pytest.raises(ValueError, match="kind"):
        _rtrl_cpu._reduce("mean", x, np.zeros(2))
    with pytest.raises(ValueError, match="out"):
        _rtrl_cpu._reduce("row_sums", x, np.zeros(3))


@pytest.mark.parametrize("backend", sorted(MODULES))
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("shape", [(1, 1), (3, 70), (32, 32), (33, 65), (200, 7)])
def test_transpose(backend, dtype, shape):
    x = data(shape, dtype)
    out = np.full(shape[::-1], np.nan, dtype)
    MODULES[backend]._transpose(x, out)
    np.testing.assert_array_equal(out, x.T)
