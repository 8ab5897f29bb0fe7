// A host context with the CUDA backend's semantics (cuda/cuda_context.cuh), so that the CPU test-suite
// exercises the partitioning the GPU runs: for_product_blocks takes the product in blocks of as many
// columns as a scratch limit holds (blocks start anywhere, mid-stream included), for_each_serial_k is one
// logical thread per column looping over k, a packed operand is read in place, reductions are taken in
// the tree order of the CUDA kernels (reduce.hpp). Everything runs on the
// calling thread, in host memory; the GEMMs are single OpenBLAS calls, as cuBLAS's are single calls.
#pragma once

#include <algorithm>
#include <stdexcept>
#include <cstring>
#include <vector>

#include "cpu_context.hpp"
#include "rtrl/array_ops.hpp"
#include "rtrl/common.hpp"
#include "rtrl/reduce.hpp"
#include "rtrl/row_functor.hpp"

namespace rtrl {

// Bytes of product scratch a block may use (the CUDA context's limit; a test hook, set small to take
// the multi-block paths).
index_t& simt_scratch_bytes();
// Product blocks taken since the module loaded (a test hook: shows the multi-block paths were run).
index_t& simt_blocks_taken();
// Steps per check window (online_loop.hpp; the CUDA context's default; a test hook, 1: every step).
index_t& simt_check_window();
// Check windows put back and run again since the module loaded (a test hook).
index_t& simt_windows_replayed();

class SimtContext {
 public:
  // Check windows (check_window.hpp): while deferred, all_finite and for_each_all keep their
  // verdict and answer true; deferred_ok() says whether every verdict since defer_checks(true) was.
  static constexpr bool kDefersChecks = true;
  index_t check_window() const { return simt_check_window(); }
  void defer_checks(bool on) {
    if (on) window_ok_ = true;
    deferred_ = on;
  }
  bool deferred_ok() {
    if (!window_ok_) ++simt_windows_replayed();
    return window_ok_;
  }

  template <class T>
  HostBuffer<T> alloc(index_t count) {
    return HostBuffer<T>(count);
  }

  template <class T>
  void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A,
            index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    if (M == 0 || N == 0) return;
    cpu_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  }

  template <class T>
  struct PackedOperand {
    index_t K, N;
    bool trans;
    const T* B;
    index_t ldb;
  };
  template <class T>
  PackedOperand<T> pack_operand(bool trans_b, index_t K, index_t N, const T* B, index_t ldb, index_t) {
    return PackedOperand<T>{K, N, trans_b, B, ldb};
  }
  template <class T>
  void gemm_packed(index_t M, const T* A, index_t lda, const PackedOperand<T>& B, bool accumulate,
                   T* C, index_t ldc) {
    gemm(false, B.trans, M, B.N, B.K, T(1), A, lda, B.B, B.ldb, T(accumulate ? 1 : 0), C, ldc);
  }

  template <class F>
  void for_each(index_t count, const F& f) {
    for (index_t i = 0; i < count; ++i) f(i);
  }

  template <class F>
  bool for_each_all(index_t count, const F& f) {
    bool all = true;
    for (index_t i = 0; i < count; ++i) all = f(i) && all;  // every call made, as on the device
    return verdict(all);
  }

  template <class F>
  void for_each_2d(index_t rows, index_t cols, const F& f) {
    for (index_t i = 0; i < rows * cols; ++i) f(i / cols, i % cols);
  }

  // The reductions of reduce.hpp in the tree order, as CudaContext's kernels take them.
  //   in: [rows, cols]   out: [rows] (row_sums), [cols] (column_sums)
  template <class T>
  void row_sums(index_t rows, index_t cols, T scale, const T* in, T* out) {
    tree_reduce<T>(rows, cols, RowElement<T>{cols, in}, StoreScaled<T>{scale, out});
  }
  template <class T>
  void column_sums(index_t rows, index_t cols, bool accumulate, const T* in, T* out) {
    tree_reduce<T>(cols, rows, ColumnElement<T>{cols, in}, StoreSum<T>{accumulate, out});
  }
  //   in: [count]   out: [1]
  template <class T>
  void norm2(index_t count, const T* in, T* out) {
    tree_reduce<T>(1, count, SquaredElement<T>{in}, StoreSqrt<T>{out});
  }

  // C [M, N] = A [M, lda] B [N, ldb]^T over K columns: one GEMM, as on CudaContext.
  template <class T>
  void dot_rows(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B, index_t ldb, T* C) {
    gemm(false, true, M, N, K, T(1), A, lda, B, ldb, T(0), C, N);
  }

  // out [cols, rows] = in [rows, cols] transposed (CudaContext: through tiles in shared memory).
  template <class T>
  void transpose(index_t rows, index_t cols, const T* in, T* out) {
    for_each_2d(cols, rows, Transpose<T>{rows, cols, in, out});
  }

  // One logical thread per column q in [q0, q1) (q = s * width + c), looping over k in order; then
  // a functor's row sums, a second pass (row_functor.hpp).
  template <class F>
  void for_each_serial_k(index_t q0, index_t q1, index_t width, index_t depth, const F& f) {
    if (HasFinish<F>::value && (q0 % width != 0 || q1 % width != 0))
      throw std::logic_error("for_each_serial_k: a functor that sums its rows needs whole rows");
    for (index_t q = q0; q < q1; ++q) {
      const index_t s = q / width, c = q % width;
      for (index_t k = 0; k < depth; ++k) {
        if constexpr (HasRow<F>::value) f(f.row(s, k), s, k, c);
        else f(s, k, c);
      }
    }
    if constexpr (HasFinish<F>::value) for_each_2d(q1 / width - q0 / width, depth, FinishRows<F>{f, q0 / width});
  }

  template <class T, class Ranges>
  bool all_finite(const Ranges& ranges) {
    for (const auto& r : ranges)
      for (index_t i = 0; i < r.second; ++i)
        if (!(r.first[i] - r.first[i] == T(0))) return verdict(false);
    return verdict(true);
  }

  template <class T>
  void copy_to_host(T* host, const T* data, index_t count) {
    if (count > 0) std::memcpy(host, data, size_t(count) * sizeof(T));
  }

  // Each of `sequences` sequences of n values load(j, i) in the tree order: the lanes of every block,
  // each block folded, then the blocks' partial sums folded; finish(j, total).
  template <class T, class Load, class Finish>
  static void tree_reduce(index_t sequences, index_t n, const Load& load, const Finish& finish) {
    const index_t blocks = reduce_blocks(n), lanes = blocks * kReduceThreads;
    std::vector<T> lane(static_cast<size_t>(lanes)), partial(static_cast<size_t>(kReduceThreads));
    for (index_t j = 0; j < sequences; ++j) {
      for (index_t g = 0; g < lanes; ++g) {
        T acc = T(0);
        for (index_t i = g; i < n; i += lanes) acc += load(j, i);
        lane[size_t(g)] = acc;
      }
      for (index_t b = 0; b < blocks; ++b) partial[size_t(b)] = tree_fold(lane.data() + b * kReduceThreads);
      if (blocks == 1) {
        finish(j, partial[0]);
        continue;
      }
      std::fill(partial.begin() + blocks, partial.end(), T(0));
      finish(j, tree_fold(partial.data()));
    }
  }

  template <class T, class Body>
  void for_product_blocks(index_t M, index_t K, index_t ncols, const T* A, index_t lda, const T* B,
                          index_t ldb, const Body& body) {
    for_product_blocks(M, ncols, A, lda, ProductSlabs<T>{B, ldb, K}, body);
  }

  // As CudaContext: blocks of as many columns as simt_scratch_bytes() holds, each product one GEMM
  // per slab into the block's scratch, then body(q0, cols, Q, ldq).
  template <class T, class Body>
  void for_product_blocks(index_t M, index_t ncols, const T* A, index_t lda, const ProductSlabs<T>& B,
                          const Body& body) {
    const index_t per_col = std::max<index_t>(1, M * index_t(sizeof(T)));
    const index_t cols_per_block = std::max<index_t>(1, std::min(ncols, simt_scratch_bytes() / per_col));
    HostBuffer<T> scratch(cols_per_block * M);
    T* Q = scratch.data();
    for (index_t q0 = 0; q0 < ncols; q0 += cols_per_block) {
      const index_t cols = std::min(cols_per_block, ncols - q0);
      ++simt_blocks_taken();
      gemm(false, false, M, cols, B.K1, T(1), A, lda, B.B1 + q0, B.ldb1, T(0), Q, cols);
      if (B.K2 > 0) gemm(false, false, M, cols, B.K2, T(1), A + B.K1, lda, B.B2 + q0, B.ldb2, T(1), Q, cols);
      body(q0, cols, Q, cols);
    }
  }

 private:
  bool verdict(bool ok) {
    if (!deferred_) return ok;
    window_ok_ = window_ok_ && ok;
    return true;
  }

  bool deferred_ = false, window_ok_ = true;
};

}  // namespace rtrl
