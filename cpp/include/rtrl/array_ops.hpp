// Element-wise functors over flat arrays, shared by the algorithms.
#pragma once

#include "rtrl/common.hpp"

namespace rtrl {

template <class T>
struct Fill {
  T value;
  T* out;
  RTRL_HD void operator()(index_t i) const { out[i] = value; }
};

// out[i] += in[i]: a step's gradient committed to the accumulated one.
template <class T>
struct AddInto {
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t i) const { out[i] += in[i]; }
};

// out[c] = sum_s G[s n + c], in order of s: per-stream parts of a gradient summed.
// f(0, s, c) with the calls for one c in increasing s (ctx.for_each_serial_k).   G: [B, n]   out: [n]
template <class T>
struct SumOverStreams {
  index_t n;
  const T* G;
  T* out;
  RTRL_HD void operator()(index_t, index_t s, index_t c) const {
    out[c] = (s == 0 ? T(0) : out[c]) + G[s * n + c];
  }
};

template <class T>
struct CopyInto {
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t i) const { out[i] = in[i]; }
};

// out[r, c] = in[r, c] between arrays with row strides ld_in and ld_out; called as f(r, c)
template <class T>
struct CopyRows {
  const T* in;
  index_t ld_in;
  T* out;
  index_t ld_out;
  RTRL_HD void operator()(index_t r, index_t c) const { out[r * ld_out + c] = in[r * ld_in + c]; }
};

// out[c, r] = in[r, c]:  in [rows, cols] -> out [cols, rows]; called as f(c, r)
template <class T>
struct Transpose {
  index_t rows, cols;
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t c, index_t r) const { out[c * rows + r] = in[r * cols + c]; }
};

// C[i, j] = sum_{k < K} A[i, k] B[j, k], summed in increasing k (a dot product per item).
//   A: [M, lda]   B: [N, ldb]   C: [M, N]   item: (i, j), flattened
template <class T>
struct RowDots {
  index_t N, K;
  const T* A;
  index_t lda;
  const T* B;
  index_t ldb;
  T* C;
  RTRL_HD void operator()(index_t idx) const {
    const T* b = B + (idx % N) * ldb;
    const T* a = A + (idx / N) * lda;
    T sum = T(0);
    for (index_t k = 0; k < K; ++k) sum += b[k] * a[k];
    C[idx] = sum;
  }
};

}  // namespace rtrl
