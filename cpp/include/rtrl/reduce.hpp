// The reductions a context offers (DESIGN §2, §11): row sums, column sums and the 2-norm.
//
//   ctx.row_sums(rows, cols, scale, in, out)           out[r] = scale * sum_c in[r, c]
//   ctx.column_sums(rows, cols, accumulate, in, out)   out[c] (= or +=) sum_r in[r, c]
//   ctx.norm2(count, in, out)                          out[0] = sqrt(sum_i in[i]^2)
//      in: [rows, cols] (row-major) or [count]   out: device memory, like in
//
// Two fixed orders, each the same on every call:
// - serial (CpuContext): each result summed in increasing index by one item of a for_each (the
//   functors below), the CPU backend's order since its first release;
// - tree (CudaContext, and SimtContext on the host): a sequence of n values is read by
//   W = reduce_blocks(n) * kReduceThreads lanes, lane g summing elements g, g + W, g + 2W, ... in
//   turn; each block of kReduceThreads lanes is folded by tree_fold, and when there are several
//   blocks their partial sums, padded with zeros to kReduceThreads, are folded the same way.
//   The order depends on n alone, never on the device or the grid the hardware could hold.
#pragma once

#include "rtrl/math.hpp"

namespace rtrl {

enum class ReduceKind : int { row_sums = 0, column_sums = 1, norm2 = 2 };

constexpr index_t kReduceThreads = 256;  // lanes of a block (a power of two)
constexpr index_t kReduceBlocks = 256;   // blocks of a sequence, at most (<= kReduceThreads)
constexpr index_t kReduceLaneItems = 8;  // elements a lane takes before another block is added

// Blocks of the tree order for a sequence of n values.
inline index_t reduce_blocks(index_t n) {
  const index_t per_block = kReduceThreads * kReduceLaneItems;
  const index_t blocks = (n + per_block - 1) / per_block;
  return blocks < 1 ? 1 : (blocks > kReduceBlocks ? kReduceBlocks : blocks);
}

// Serial order ------------------------------------------------------------------------------------

// out[r] = scale * sum_{c < cols} in[r cols + c], summed in increasing c.   item: r
template <class T>
struct SerialRowSum {
  index_t cols;
  T scale;
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t r) const {
    T sum = T(0);
    for (index_t c = 0; c < cols; ++c) sum += in[r * cols + c];
    out[r] = scale * sum;
  }
};

// out[c] (= or +=) sum_{r < rows} in[r cols + c], summed in increasing r.   item: c
template <class T>
struct SerialColumnSum {
  index_t rows, cols;
  bool accumulate;
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t c) const {
    T sum = T(0);
    for (index_t r = 0; r < rows; ++r) sum += in[r * cols + c];
    out[c] = accumulate ? out[c] + sum : sum;
  }
};

// out[0] = sqrt(sum_i in[i]^2), summed in increasing i (one item).
template <class T>
struct SerialNorm2 {
  index_t count;
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t) const {
    T sum = T(0);
    for (index_t i = 0; i < count; ++i) sum += in[i] * in[i];
    out[0] = math::sqrt(sum);
  }
};

// Tree order: what a sequence reads and what its total becomes ------------------------------------
// A load gives element i of sequence j; a finish stores sequence j's total.

template <class T>
struct RowElement {  // sequence r: in[r, :]   in: [rows, cols]
  index_t cols;
  const T* in;
  RTRL_HD T operator()(index_t r, index_t i) const { return in[r * cols + i]; }
};

template <class T>
struct ColumnElement {  // sequence c: in[:, c]   in: [rows, cols]
  index_t cols;
  const T* in;
  RTRL_HD T operator()(index_t c, index_t i) const { return in[i * cols + c]; }
};

template <class T>
struct SquaredElement {  // the one sequence: in[i]^2
  const T* in;
  RTRL_HD T operator()(index_t, index_t i) const { return in[i] * in[i]; }
};

template <class T>
struct StoreScaled {
  T scale;
  T* out;
  RTRL_HD void operator()(index_t j, T total) const { out[j] = scale * total; }
};

template <class T>
struct StoreSum {
  bool accumulate;
  T* out;
  RTRL_HD void operator()(index_t j, T total) const { out[j] = accumulate ? out[j] + total : total; }
};

template <class T>
struct StoreSqrt {
  T* out;
  RTRL_HD void operator()(index_t j, T total) const { out[j] = math::sqrt(total); }
};

// The tree fold of kReduceThreads values in place, as the device runs it with one thread per value:
// at width w = kReduceThreads / 2, ..., 1, value t < w becomes value t + value t + w. Returns the
// total (values[0]).
template <class T>
T tree_fold(T* values) {
  for (index_t w = kReduceThreads / 2; w > 0; w /= 2)
    for (index_t t = 0; t < w; ++t) values[t] = values[t] + values[t + w];
  return values[0];
}

}  // namespace rtrl
