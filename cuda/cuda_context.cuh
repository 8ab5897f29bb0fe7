// CUDA backend context (DESIGN §2): cuBLAS GEMM on the caller's stream (row-major through the
// column-major mapping of gemm_layout.hpp) with the current device's handle, grid-stride kernels for
// the shared functors, reductions in the fixed tree order of reduce.hpp, and stream-ordered workspace
// from the caller's allocator (workspace.hpp).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <stdexcept>
#include <initializer_list>
#include <utility>
#include <cstdint>

#include "cuda_check.cuh"
#include "device_info.hpp"
#include "workspace.hpp"
#include "rtrl/common.hpp"
#include "rtrl/array_ops.hpp"
#include "rtrl/gemm_layout.hpp"
#include "rtrl/reduce.hpp"
#include "rtrl/row_functor.hpp"

namespace rtrl {

// `count` elements of workspace for work on `stream`, from the installed allocator (CuPy's pool).
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  DeviceBuffer(index_t count, cudaStream_t stream) : count_(count) {
    if (count > 0)
      data_ = static_cast<T*>(workspace_allocate(size_t(count) * sizeof(T),
                                                 reinterpret_cast<std::uintptr_t>(stream)));
  }
  DeviceBuffer(DeviceBuffer&& other) noexcept { swap(other); }
  DeviceBuffer& operator=(DeviceBuffer&& other) noexcept {
    swap(other);
    return *this;
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  ~DeviceBuffer() { workspace_release(data_); }
  T* data() { return data_; }
  index_t size() const { return count_; }

 private:
  void swap(DeviceBuffer& o) noexcept {
    std::swap(data_, o.data_);
    std::swap(count_, o.count_);
  }
  T* data_ = nullptr;
  index_t count_ = 0;
};

template <class F>
__global__ void for_each_kernel(index_t count, F f) {
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += index_t(gridDim.x) * blockDim.x)
    f(i);
}

template <class F>
__global__ void for_each_2d_kernel(index_t rows, index_t cols, F f) {
  const index_t count = rows * cols;
  for (index_t i = index_t(blockIdx.x) * blockDim.x + threadIdx.x; i < count;
       i += index_t(gridDim.x) * blockDim.x)
    f(i / cols, i % cols);
}

// One thread per column q in [q0, q1) (q = s * width + c), looping over k in order.
template <class F>
__global__ void for_each_serial_k_kernel(index_t q0, index_t q1, index_t width, index_t depth, F f) {
  for (index_t q = q0 + index_t(blockIdx.x) * blockDim.x + threadIdx.x; q < q1;
       q += index_t(gridDim.x) * blockDim.x) {
    const index_t s = q / width, c = q % width;
    for (index_t k = 0; k < depth; ++k) {
      if constexpr (HasRow<F>::value) f(f.row(s, k), s, k, c);
      else f(s, k, c);
    }
  }
}

// The tree fold of reduce.hpp over the block's kReduceThreads values in shared memory, one value a
// thread; the total ends in values[0].
template <class T>
__device__ void block_tree_fold(T* values) {
  __syncthreads();
  for (int w = int(kReduceThreads) / 2; w > 0; w /= 2) {
    if (int(threadIdx.x) < w) values[threadIdx.x] = values[threadIdx.x] + values[threadIdx.x + w];
    __syncthreads();
  }
}

// The first pass of the tree order: block b of sequence j (blockIdx.x, blockIdx.y + a multiple of
// gridDim.y) folds its lanes' sums of load(j, i); with one block a sequence, finish(j, total), else
// partials[j, b].   partials: [sequences, gridDim.x]
template <class T, class Load, class Finish>
__global__ void reduce_lanes_kernel(index_t sequences, index_t n, Load load, T* partials, Finish finish) {
  __shared__ T values[kReduceThreads];
  const index_t blocks = gridDim.x, lanes = blocks * kReduceThreads;
  const index_t g = index_t(blockIdx.x) * kReduceThreads + threadIdx.x;
  for (index_t j = blockIdx.y; j < sequences; j += gridDim.y) {
    T acc = T(0);
    for (index_t i = g; i < n; i += lanes) acc += load(j, i);
    values[threadIdx.x] = acc;
    block_tree_fold(values);
    if (threadIdx.x == 0) {
      if (blocks == 1) finish(j, values[0]);
      else partials[j * blocks + blockIdx.x] = values[0];
    }
  }
}

// The second pass: sequence j's `blocks` partial sums, padded with zeros, folded; finish(j, total).
template <class T, class Finish>
__global__ void reduce_partials_kernel(index_t sequences, index_t blocks, const T* partials, Finish finish) {
  __shared__ T values[kReduceThreads];
  for (index_t j = blockIdx.x; j < sequences; j += gridDim.x) {
    values[threadIdx.x] = index_t(threadIdx.x) < blocks ? partials[j * blocks + threadIdx.x] : T(0);
    block_tree_fold(values);
    if (threadIdx.x == 0) finish(j, values[0]);
  }
}

constexpr int kTransposeTile = 32;  // a tile's side; a block is kTransposeTile x kTransposeRowsPerPass
constexpr int kTransposeRowsPerPass = 8;

// out [cols, rows] = in [rows, cols] transposed through kTransposeTile-square tiles in shared memory,
// so that both the reads of in's rows and the writes of out's rows are coalesced (tile t: rows
// [32 (t / tiles across), +32) and columns [32 (t % tiles across), +32) of in).
template <class T>
__global__ void transpose_kernel(index_t rows, index_t cols, const T* in, T* out) {
  __shared__ T tile[kTransposeTile][kTransposeTile + 1];  // + 1: no bank conflicts down a column
  const index_t across = (cols + kTransposeTile - 1) / kTransposeTile;
  const index_t tiles = across * ((rows + kTransposeTile - 1) / kTransposeTile);
  for (index_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const index_t r0 = t / across * kTransposeTile, c0 = t % across * kTransposeTile;
    for (int k = threadIdx.y; k < kTransposeTile; k += kTransposeRowsPerPass) {
      const index_t r = r0 + k, c = c0 + threadIdx.x;
      if (r < rows && c < cols) tile[k][threadIdx.x] = in[r * cols + c];
    }
    __syncthreads();
    for (int k = threadIdx.y; k < kTransposeTile; k += kTransposeRowsPerPass) {
      const index_t c = c0 + k, r = r0 + threadIdx.x;
      if (c < cols && r < rows) out[c * rows + r] = tile[threadIdx.x][k];
    }
    __syncthreads();
  }
}

// flag[0] = 1 when data[i] is +-inf or NaN.
template <class T>
struct FlagNonFinite {
  const T* data;
  int* flag;
  __device__ void operator()(index_t i) const {
    const T v = data[i];
    if (!(v - v == T(0))) *flag = 1;
  }
};

// f(i) for one i; flag[0] = 1 when it returns false.
template <class F>
struct FlagFalse {
  F f;
  int* flag;
  __device__ void operator()(index_t i) const {
    if (!f(i)) *flag = 1;
  }
};

// The calling host thread's cuBLAS handle for `device` (created on first use, with it current).
cublasHandle_t cublas_handle(int device);

class CudaContext {
 public:
  // Runs on the current device, on `stream` (0: the legacy default stream).
  explicit CudaContext(std::uintptr_t stream)
      : stream_(reinterpret_cast<cudaStream_t>(stream)), handle_(cublas_handle(cuda_current_device())) {
    RTRL_CUBLAS_CHECK(cublasSetStream(handle_, stream_));
  }

  cudaStream_t stream() const { return stream_; }

  // Check windows (algo/check_window.hpp): while deferred, all_finite and for_each_all raise a
  // window flag on the device instead of waiting for the stream, and answer true; deferred_ok()
  // reads the flag — the window's one wait.
  static constexpr bool kDefersChecks = true;
  index_t check_window() const { return index_t(cuda_check_window()); }
  void defer_checks(bool on) {
    if (on) {
      if (window_flag_.size() == 0) window_flag_ = DeviceBuffer<int>(1, stream_);
      RTRL_CUDA_CHECK(cudaMemsetAsync(window_flag_.data(), 0, sizeof(int), stream_));
    }
    deferred_ = on;
  }
  bool deferred_ok() {
    int host = 0;
    RTRL_CUDA_CHECK(cudaMemcpyAsync(&host, window_flag_.data(), sizeof(int), cudaMemcpyDeviceToHost, stream_));
    RTRL_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host == 0;
  }

  template <class T>
  DeviceBuffer<T> alloc(index_t count) {
    return DeviceBuffer<T>(count, stream_);
  }

  void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, float alpha,
            const float* A, index_t lda, const float* B, index_t ldb, float beta, float* C,
            index_t ldc) {
    if (M == 0 || N == 0) return;
    const auto g = row_major_as_col_major(trans_a, trans_b, M, N, K, A, lda, B, ldb, ldc);
    RTRL_CUBLAS_CHECK_ON(stream_, cublasSgemm(handle_, op(g.trans_a), op(g.trans_b), int(g.m), int(g.n),
                                  int(g.k), &alpha, g.a, int(g.lda), g.b, int(g.ldb), &beta, C,
                                  int(g.ldc)));
  }
  void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, double alpha,
            const double* A, index_t lda, const double* B, index_t ldb, double beta, double* C,
            index_t ldc) {
    if (M == 0 || N == 0) return;
    const auto g = row_major_as_col_major(trans_a, trans_b, M, N, K, A, lda, B, ldb, ldc);
    RTRL_CUBLAS_CHECK_ON(stream_, cublasDgemm(handle_, op(g.trans_a), op(g.trans_b), int(g.m), int(g.n),
                                  int(g.k), &alpha, g.a, int(g.lda), g.b, int(g.ldb), &beta, C,
                                  int(g.ldc)));
  }

  // A right-hand operand op(B) [K, N] for `uses` products with it (gemm_packed): cuBLAS reads B as
  // it is, so this only remembers where it lies and how.
  template <class T>
  struct PackedOperand {
    index_t K, N;
    bool trans;
    const T* B;
    index_t ldb;
  };
  template <class T>
  PackedOperand<T> pack_operand(bool trans_b, index_t K, index_t N, const T* B, index_t ldb,
                                index_t /*uses*/) {
    return PackedOperand<T>{K, N, trans_b, B, ldb};
  }

  // Row-major C[M, N] = A[M, K] op(B) (+ C when accumulate).
  template <class T>
  void gemm_packed(index_t M, const T* A, index_t lda, const PackedOperand<T>& B, bool accumulate,
                   T* C, index_t ldc) {
    gemm(false, B.trans, M, B.N, B.K, T(1), A, lda, B.B, B.ldb, T(accumulate ? 1 : 0), C, ldc);
  }

  template <class F>
  void for_each(index_t count, const F& f) {
    if (count <= 0) return;
    for_each_kernel<<<grid(count), kThreads, 0, stream_>>>(count, f);
    RTRL_CUDA_CHECK_LAUNCH(stream_, __PRETTY_FUNCTION__);
  }

  // Runs f(i) for every i in [0, count); returns whether every call returned true (one wait for
  // the stream).
  template <class F>
  bool for_each_all(index_t count, const F& f) {
    if (deferred_) {
      for_each(count, FlagFalse<F>{f, window_flag_.data()});
      return true;
    }
    if (flag_.size() == 0) flag_ = DeviceBuffer<int>(1, stream_);
    RTRL_CUDA_CHECK(cudaMemsetAsync(flag_.data(), 0, sizeof(int), stream_));
    for_each(count, FlagFalse<F>{f, flag_.data()});
    int host = 0;
    RTRL_CUDA_CHECK(cudaMemcpyAsync(&host, flag_.data(), sizeof(int), cudaMemcpyDeviceToHost, stream_));
    RTRL_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host == 0;
  }

  template <class F>
  void for_each_2d(index_t rows, index_t cols, const F& f) {
    if (rows <= 0 || cols <= 0) return;
    for_each_2d_kernel<<<grid(rows * cols), kThreads, 0, stream_>>>(rows, cols, f);
    RTRL_CUDA_CHECK_LAUNCH(stream_, __PRETTY_FUNCTION__);
  }

  template <class F>
  void for_each_serial_k(index_t q0, index_t q1, index_t width, index_t depth, const F& f) {
    if (q1 <= q0) return;
    if (HasFinish<F>::value && (q0 % width != 0 || q1 % width != 0))
      throw std::logic_error("for_each_serial_k: a functor that sums its rows needs whole rows");
    for_each_serial_k_kernel<<<grid(q1 - q0), kThreads, 0, stream_>>>(q0, q1, width, depth, f);
    RTRL_CUDA_CHECK_LAUNCH(stream_, __PRETTY_FUNCTION__);
    if constexpr (HasFinish<F>::value)  // a second pass over the whole rows (row_functor.hpp)
      for_each_2d(q1 / width - q0 / width, depth, FinishRows<F>{f, q0 / width});
  }

  // C [M, N] = A [M, lda] B [N, ldb]^T over K columns: one cuBLAS call (coalesced, unlike a thread
  // per element walking rows K apart).
  template <class T>
  void dot_rows(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B, index_t ldb, T* C) {
    gemm(false, true, M, N, K, T(1), A, lda, B, ldb, T(0), C, N);
  }

  // out [cols, rows] = in [rows, cols] transposed.
  template <class T>
  void transpose(index_t rows, index_t cols, const T* in, T* out) {
    if (rows <= 0 || cols <= 0) return;
    const index_t tiles = ((rows + kTransposeTile - 1) / kTransposeTile) *
                          ((cols + kTransposeTile - 1) / kTransposeTile);
    const dim3 block(kTransposeTile, kTransposeRowsPerPass);
    transpose_kernel<T><<<unsigned(std::min<index_t>(tiles, index_t(1) << 20)), block, 0, stream_>>>(
        rows, cols, in, out);
    RTRL_CUDA_CHECK_LAUNCH(stream_, __PRETTY_FUNCTION__);
  }

  // The reductions of reduce.hpp in the tree order.
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

  // True when no value in the ranges (pointer, count) is +-inf or NaN: one flag for all ranges,
  // one wait for the stream.
  //   ranges: a range of (const T*, count) pairs
  template <class T, class Ranges>
  bool all_finite(const Ranges& ranges) {
    if (deferred_) {
      for (const auto& r : ranges) for_each(r.second, FlagNonFinite<T>{r.first, window_flag_.data()});
      return true;
    }
    if (flag_.size() == 0) flag_ = DeviceBuffer<int>(1, stream_);
    RTRL_CUDA_CHECK(cudaMemsetAsync(flag_.data(), 0, sizeof(int), stream_));
    for (const auto& r : ranges) for_each(r.second, FlagNonFinite<T>{r.first, flag_.data()});
    int host = 0;
    RTRL_CUDA_CHECK(cudaMemcpyAsync(&host, flag_.data(), sizeof(int), cudaMemcpyDeviceToHost, stream_));
    RTRL_CUDA_CHECK(cudaStreamSynchronize(stream_));
    return host == 0;
  }

  template <class T>
  void copy_to_host(T* host, const T* data, index_t count) {
    RTRL_CUDA_CHECK(cudaMemcpyAsync(host, data, size_t(count) * sizeof(T), cudaMemcpyDeviceToHost, stream_));
    RTRL_CUDA_CHECK(cudaStreamSynchronize(stream_));
  }

  // Calls body(q0, cols, Q, ldq) for blocks [q0, q0 + cols) of the columns [0, ncols), with
  // Q [M, ldq] holding those columns of the product A B (one cuBLAS call per block, as many columns
  // as a bounded scratch holds; stream order):   A: [M, lda] (K columns)   B: [K, ldb].
  // The block's product is taken before body runs, so body may overwrite those columns of B.
  template <class T, class Body>
  void for_product_blocks(index_t M, index_t K, index_t ncols, const T* A, index_t lda,
                          const T* B, index_t ldb, const Body& body) {
    for_product_blocks(M, ncols, A, lda, ProductSlabs<T>{B, ldb, K}, body);
  }

  // The same with B given as two slabs of rows (ProductSlabs): A [M, lda] (K1 + K2 columns) times
  // the slabs is one cuBLAS call per slab, the second accumulating.
  template <class T, class Body>
  void for_product_blocks(index_t M, index_t ncols, const T* A, index_t lda,
                          const ProductSlabs<T>& B, const Body& body) {
    const index_t per_col = std::max<index_t>(1, M * index_t(sizeof(T)));
    const index_t cols_per_block = std::max<index_t>(1, std::min(ncols, cuda_scratch_bytes() / per_col));
    const index_t words = (cols_per_block * M * index_t(sizeof(T)) + 7) / 8;
    if (scratch_.size() < words) scratch_ = DeviceBuffer<double>(words, stream_);
    T* Q = reinterpret_cast<T*>(scratch_.data());
    for (index_t q0 = 0; q0 < ncols; q0 += cols_per_block) {
      const index_t cols = std::min(cols_per_block, ncols - q0);
      gemm(false, false, M, cols, B.K1, T(1), A, lda, B.B1 + q0, B.ldb1, T(0), Q, cols);
      if (B.K2 > 0)
        gemm(false, false, M, cols, B.K2, T(1), A + B.K1, lda, B.B2 + q0, B.ldb2, T(1), Q, cols);
      body(q0, cols, Q, cols);
    }
  }

 private:
  // `sequences` sequences of n values load(j, i) in the tree order (reduce.hpp): a grid of
  // reduce_blocks(n) blocks a sequence, then, with more than one, a pass over their partial sums.
  template <class T, class Load, class Finish>
  void tree_reduce(index_t sequences, index_t n, const Load& load, const Finish& finish) {
    if (sequences <= 0) return;
    const index_t blocks = reduce_blocks(n);
    const unsigned rows = unsigned(std::min<index_t>(sequences, 65535));
    T* partials = nullptr;
    if (blocks > 1) {
      const index_t words = (sequences * blocks * index_t(sizeof(T)) + 7) / 8;
      if (partials_.size() < words) partials_ = DeviceBuffer<double>(words, stream_);
      partials = reinterpret_cast<T*>(partials_.data());
    }
    reduce_lanes_kernel<T><<<dim3(unsigned(blocks), rows), unsigned(kReduceThreads), 0, stream_>>>(
        sequences, n, load, partials, finish);
    RTRL_CUDA_CHECK_LAUNCH(stream_, __PRETTY_FUNCTION__);
    if (blocks == 1) return;
    reduce_partials_kernel<T><<<rows, unsigned(kReduceThreads), 0, stream_>>>(sequences, blocks,
                                                                              partials, finish);
    RTRL_CUDA_CHECK_LAUNCH(stream_, __PRETTY_FUNCTION__);
  }

  static constexpr int kThreads = 256;

  static cublasOperation_t op(bool t) { return t ? CUBLAS_OP_T : CUBLAS_OP_N; }
  static unsigned grid(index_t count) {
    return unsigned(std::min<index_t>((count + kThreads - 1) / kThreads, 65535 * 32));
  }

  cudaStream_t stream_;
  cublasHandle_t handle_;
  DeviceBuffer<double> scratch_;
  DeviceBuffer<double> partials_;  // the tree reductions' partial sums
  DeviceBuffer<int> flag_;
  DeviceBuffer<int> window_flag_;  // raised by a deferred check (check windows)
  bool deferred_ = false;
};

}  // namespace rtrl
