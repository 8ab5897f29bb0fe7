// CPU backend context: row-major GEMM on OpenBLAS, loops on OpenMP (DESIGN §2).
//
// OpenBLAS runs single-threaded (set once when the module loads); all threading is OpenMP's, one level
// deep, so BLAS threads never nest inside OpenMP threads. The number of threads is OpenMP's
// (OMP_NUM_THREADS), fixed for the lifetime of a context.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <stdexcept>
#include <type_traits>
#include <utility>
#include <memory>
#include <vector>

#include "rtrl/common.hpp"
#include "rtrl/array_ops.hpp"
#include "rtrl/float_bits.hpp"
#include "rtrl/item_cost.hpp"
#include "rtrl/reduce.hpp"
#include "rtrl/row_functor.hpp"
#include "cpu_panel_product.hpp"

namespace rtrl {

// Row-major C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C on one thread.
void cpu_gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, float alpha,
              const float* A, index_t lda, const float* B, index_t ldb, float beta, float* C,
              index_t ldc);
void cpu_gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, double alpha,
              const double* A, index_t lda, const double* B, index_t ldb, double beta, double* C,
              index_t ldc);

// Puts OpenBLAS into single-threaded mode; called once when the CPU module is imported.
void cpu_backend_init();

template <class T>
class HostBuffer {
 public:
  explicit HostBuffer(index_t count) : data_(count > 0 ? new T[size_t(count)] : nullptr) {}
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }

 private:
  std::unique_ptr<T[]> data_;
};

class CpuContext {
 public:
  // A check costs no wait on the host: the online loop checks every step (check_window.hpp), and
  // reads the bounds that let an update go without its backup (update_bounds.hpp, for_each_max).
  static constexpr bool kDefersChecks = false;

  CpuContext() : threads_(std::max(1, omp_get_max_threads())) {}
  explicit CpuContext(int threads) : threads_(std::max(1, threads)) {}

  int threads() const { return threads_; }

  template <class T>
  HostBuffer<T> alloc(index_t count) {
    return HostBuffer<T>(count);
  }

  // A large product is split into parts along the larger of M and N, the same parts for any thread
  // count, shared out across threads when no parallel region is active; each part is one
  // single-threaded OpenBLAS call.
  template <class T>
  void gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha, const T* A,
            index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
    const double flops = 2.0 * double(M) * double(N) * double(K);
    if (flops < kParallelFlops) {
      cpu_gemm(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
      return;
    }
    // The parts depend on the shape alone, and a single thread computes the same parts in turn: a
    // BLAS picks its kernel (and so its order of summation) by the shape of each call, so parts
    // that changed with the thread count would change the bits.
    const bool split_n = N >= M;
    const index_t extent = split_n ? N : M;
    const index_t parts = std::min<index_t>(kGemmMaxParts, std::max<index_t>(1, extent / kGemmPartMin));
#pragma omp parallel for num_threads(threads_) schedule(static) if (threads_ > 1 && !omp_in_parallel())
    for (index_t p = 0; p < parts; ++p) {
      const index_t lo = extent * p / parts, hi = extent * (p + 1) / parts;
      if (split_n) {
        const T* B_part = trans_b ? B + lo * ldb : B + lo;
        cpu_gemm(trans_a, trans_b, M, hi - lo, K, alpha, A, lda, B_part, ldb, beta, C + lo, ldc);
      } else {
        const T* A_part = trans_a ? A + lo : A + lo * lda;
        cpu_gemm(trans_a, trans_b, hi - lo, N, K, alpha, A_part, lda, B, ldb, beta,
                 C + lo * ldc, ldc);
      }
    }
  }

  // A right-hand operand op(B) [K, N] for `uses` products with it (gemm_packed): packed once into
  // strips when it is used more than once, else read in place.
  template <class T>
  struct PackedOperand {
    index_t K, N;
    HostBuffer<T> strips;  // [ceil(N / kStrip), K, kStrip], or empty
    bool trans;
    const T* B;
    index_t ldb;
  };
  template <class T>
  PackedOperand<T> pack_operand(bool trans_b, index_t K, index_t N, const T* B, index_t ldb,
                                index_t uses) {
    constexpr index_t NR = panel::kStrip<T>;
    PackedOperand<T> op{K, N, HostBuffer<T>(uses > 1 ? (N + NR - 1) / NR * K * NR : 0), trans_b, B, ldb};
    if (uses > 1) panel::pack_operand(trans_b, K, N, B, ldb, op.strips.data());
    return op;
  }

  // Row-major C[M, N] = A[M, K] op(B) (+ C when accumulate), op(B) from pack_operand; packed
  // strips are shared among threads when the product is large.
  template <class T>
  void gemm_packed(index_t M, const T* A, index_t lda, const PackedOperand<T>& B, bool accumulate,
                   T* C, index_t ldc) {
    constexpr index_t NR = panel::kStrip<T>;
    const T* Bp = B.strips.data();
    if (Bp == nullptr) {
      gemm(false, B.trans, M, B.N, B.K, T(1), A, lda, B.B, B.ldb, T(accumulate ? 1 : 0), C, ldc);
      return;
    }
    const index_t strips = (B.N + NR - 1) / NR;
    const double flops = 2.0 * double(M) * double(B.N) * double(B.K);
    if (threads_ == 1 || omp_in_parallel() || flops < kParallelFlops || strips < 2) {
      panel::multiply(M, B.N, B.K, A, lda, Bp, B.K * NR, NR, 0, strips, accumulate, C, ldc);
      return;
    }
    in_equal_runs(int(std::min<index_t>(threads_, strips)), strips, [&](index_t j0, index_t j1, int) {
      panel::multiply(M, B.N, B.K, A, lda, Bp, B.K * NR, NR, j0, j1, accumulate, C, ldc);
    });
  }

  // The largest magnitude in the ranges (pointer, count), +inf when any value is +-inf or NaN: the
  // largest magnitude as an unsigned integer (the bits without the sign) is at least the all-ones
  // exponent exactly then. An integer max has a one-cycle latency, so the reduction runs at the
  // load rate.
  //   ranges: a range of (const T*, count) pairs
  template <class T, class Ranges>
  T largest_magnitude(const Ranges& ranges) {
    FloatBits<T> largest = 0;
    for (const auto& r : ranges) {
      const T* data = r.first;
#pragma omp simd reduction(max : largest)
      for (index_t i = 0; i < r.second; ++i) largest = std::max(largest, magnitude_bits(data[i]));
    }
    return magnitude_from_bits<T>(largest);
  }

  // True when no value in the ranges is +-inf or NaN.
  template <class T, class Ranges>
  bool all_finite(const Ranges& ranges) {
    return largest_magnitude<T>(ranges) < std::numeric_limits<T>::infinity();
  }

  template <class T>
  void copy_to_host(T* host, const T* data, index_t count) {
    std::copy(data, data + count, host);
  }

  // Each loop works on a local copy of the functor, and each thread of a parallel loop on its own:
  // its members then cannot alias the arrays it writes, so loads through them stay loop-invariant
  // and the loop vectorises with contiguous loads (a copy shared among threads is read through a
  // pointer, and the loop turns into gathers).
  template <class F>
  void for_each(index_t count, const F& functor) {
    const F f = functor;
    if (threads_ == 1 || omp_in_parallel() || count * ItemCost<F>::value < kParallelItems) {
#pragma omp simd
      for (index_t i = 0; i < count; ++i) f(i);
      return;
    }
#pragma omp parallel num_threads(threads_)
    {
      const F g = f;
#pragma omp for simd schedule(static)
      for (index_t i = 0; i < count; ++i) g(i);
    }
  }

  // Runs f(i) for every i in [0, count), split among threads as for_each splits it; returns whether
  // every call returned true.
  template <class F>
  bool for_each_all(index_t count, const F& functor) {
    const F f = functor;
    int failed = 0;
    if (threads_ == 1 || omp_in_parallel() || count * ItemCost<F>::value < kParallelItems) {
#pragma omp simd reduction(| : failed)
      for (index_t i = 0; i < count; ++i) failed |= f(i) ? 0 : 1;
      return failed == 0;
    }
#pragma omp parallel num_threads(threads_)
    {
      const F g = f;
#pragma omp for simd schedule(static) reduction(| : failed)
      for (index_t i = 0; i < count; ++i) failed |= g(i) ? 0 : 1;
    }
    return failed == 0;
  }

  // Runs f(i) for every i in [0, count), split among threads as for_each splits it; returns the
  // largest value the calls returned (an unsigned integer type), 0 when count is 0.
  template <class F>
  auto for_each_max(index_t count, const F& functor) {
    const F f = functor;
    decltype(f(index_t(0))) largest = 0;
    if (threads_ == 1 || omp_in_parallel() || count * ItemCost<F>::value < kParallelItems) {
#pragma omp simd reduction(max : largest)
      for (index_t i = 0; i < count; ++i) largest = std::max(largest, f(i));
      return largest;
    }
#pragma omp parallel num_threads(threads_)
    {
      const F g = f;
#pragma omp for simd schedule(static) reduction(max : largest)
      for (index_t i = 0; i < count; ++i) largest = std::max(largest, g(i));
    }
    return largest;
  }

  // The reductions of reduce.hpp in the serial order: one item per result, summed in increasing index.
  //   in: [rows, cols]   out: [rows] (row_sums), [cols] (column_sums)
  template <class T>
  void row_sums(index_t rows, index_t cols, T scale, const T* in, T* out) {
    for_each(rows, SerialRowSum<T>{cols, scale, in, out});
  }
  template <class T>
  void column_sums(index_t rows, index_t cols, bool accumulate, const T* in, T* out) {
    for_each(cols, SerialColumnSum<T>{rows, cols, accumulate, in, out});
  }
  //   in: [count]   out: [1]
  template <class T>
  void norm2(index_t count, const T* in, T* out) {
    for_each(1, SerialNorm2<T>{count, in, out});
  }

  // C [M, N] = A [M, lda] B [N, ldb]^T over K columns, a dot product per element (small products,
  // where that beats a BLAS call).
  template <class T>
  void dot_rows(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* B, index_t ldb, T* C) {
    for_each(M * N, RowDots<T>{N, K, A, lda, B, ldb, C});
  }

  // out [cols, rows] = in [rows, cols] transposed.
  template <class T>
  void transpose(index_t rows, index_t cols, const T* in, T* out) {
    for_each_2d(cols, rows, Transpose<T>{rows, cols, in, out});
  }

  // f(r, c) for r in [0, rows), c in [0, cols); rows are shared among threads when the work is
  // large, columns are vectorised.
  template <class F>
  void for_each_2d(index_t rows, index_t cols, const F& functor) {
    const F f = functor;
    auto row = [cols](const F& g, index_t r) {
#pragma omp simd
      for (index_t c = 0; c < cols; ++c) g(r, c);
    };
    if (threads_ == 1 || omp_in_parallel() || rows < 2 ||
        rows * cols * ItemCost<F>::value < kParallelItems) {
      for (index_t r = 0; r < rows; ++r) row(f, r);
      return;
    }
#pragma omp parallel num_threads(threads_)
    {
      const F g = f;
#pragma omp for schedule(static)
      for (index_t r = 0; r < rows; ++r) row(g, r);
    }
  }

  // f(s, k, c) for every column q = s * width + c in [q0, q1) and k in [0, depth), where the calls
  // for one q happen in increasing k on one thread (f(f.row(s, k), s, k, c) for functors with a
  // row(), see row_functor.hpp). Runs over tiles of about kTileItems columns: whole rows, or a row's
  // columns when a row is wider; each tile is taken k by k, its rows in turn with the columns
  // vectorised. What f accumulates per column across k stays in L1, each k reads its rows of the
  // tile as one contiguous run (the rows of one k are adjacent in the callers' layouts), and there
  // is no division in the inner loop. The columns of one q are independent of the others', so the
  // tiling changes no result.
  // A functor that sums a value over each row (row_functor.hpp) runs whole rows in tiles the same
  // way: row s's columns for k, summed in row_lane_sum's lanes and order (written out here so that
  // the columns vectorise), then finish(s, k, sum); threads take equal runs of rows.
  template <class F>
  void for_each_serial_k(index_t q0, index_t q1, index_t width, index_t depth, const F& functor) {
    const F shared = functor;
    const index_t items = (q1 - q0) * depth * ItemCost<F>::value;  // shared among threads from kParallelItems
    const index_t tile_rows = std::max<index_t>(1, kTileItems / width);
    const index_t chunk = std::min(width, kTileItems);
    if constexpr (HasFinish<F>::value) {
      static_assert(HasRow<F>::value, "a functor that sums its rows has a row(s, k)");
      if (q0 % width != 0 || q1 % width != 0)
        throw std::logic_error("for_each_serial_k: a functor that sums its rows needs whole rows");
      auto rows = [&](index_t s0, index_t s1) {
        const F f = shared;
        using T = decltype(f.row_sum(index_t(), index_t()));
        for (index_t t0 = s0; t0 < s1; t0 += tile_rows)
          for (index_t k = 0; k < depth; ++k)
            for (index_t s = t0; s < std::min(t0 + tile_rows, s1); ++s) {
              const auto row = f.row(s, k);
              T lane[kRowLanes] = {};
              index_t c = 0;
              for (; c + kRowLanes <= width; c += kRowLanes) {
#pragma omp simd
                for (index_t j = 0; j < kRowLanes; ++j) lane[j] += f(row, s, k, c + j);
              }
#pragma omp simd
              for (index_t j = 0; j < width - c; ++j) lane[j] += f(row, s, k, c + j);
              T sum = T(0);
              for (index_t j = 0; j < kRowLanes; ++j) sum += lane[j];
              f.finish(s, k, sum);
            }
      };
      const index_t s0 = q0 / width, s1 = q1 / width;
      if (threads_ == 1 || omp_in_parallel() || items < kParallelItems || s1 - s0 < 2) {
        rows(s0, s1);
        return;
      }
      in_equal_runs(int(std::min<index_t>(threads_, s1 - s0)), s1 - s0,
                    [&](index_t lo, index_t hi, int) { rows(s0 + lo, s0 + hi); });
      return;
    }
    auto part = [&](index_t lo, index_t hi) {
      const F f = shared;  // this thread's own copy (see for_each)
      const index_t end_row = (hi + width - 1) / width;
      for (index_t s0 = lo / width; s0 < end_row; s0 += tile_rows) {
        const index_t s1 = std::min(s0 + tile_rows, end_row);
        for (index_t cb = 0; cb < width; cb += chunk) {
          const index_t ce = std::min(cb + chunk, width);
          for (index_t k = 0; k < depth; ++k) {
            for (index_t s = s0; s < s1; ++s) {
              const index_t c0 = std::max(lo - s * width, cb);
              const index_t c1 = std::min(hi - s * width, ce);
              if (c0 >= c1) continue;
              if constexpr (HasRow<F>::value) {
                const auto row = f.row(s, k);
#pragma omp simd
                for (index_t c = c0; c < c1; ++c) f(row, s, k, c);
              } else {
#pragma omp simd
                for (index_t c = c0; c < c1; ++c) f(s, k, c);
              }
            }
          }
        }
      }
    };
    const index_t count = q1 - q0;
    if (threads_ == 1 || omp_in_parallel() || items < kParallelItems) {
      part(q0, q1);
      return;
    }
    in_equal_runs(threads_, count, [&](index_t lo, index_t hi, int) { part(q0 + lo, q0 + hi); });
  }

  // How for_product_blocks splits a product's columns: into strips of panel::kStrip columns, shared
  // by workers in equal runs, taken panel_strips at a time (a panel and its product fill about half
  // of L1); its scratch is workers * slot elements.
  struct ProductPlan {
    index_t strips;
    index_t panel_strips;
    index_t slot;
    int workers;
  };
  template <class T>
  ProductPlan product_plan(index_t M, index_t K, index_t ncols) const {
    constexpr index_t NR = panel::kStrip<T>, align = kCacheLine / index_t(sizeof(T));
    const index_t strips = (ncols + NR - 1) / NR;
    const double flops = 2.0 * double(M) * double(K) * double(ncols);
    const bool parallel = threads_ > 1 && !omp_in_parallel() && flops >= kParallelProductFlops;
    const int workers = parallel ? int(std::min<index_t>(threads_, strips)) : 1;
    const index_t strip_bytes = (K + M) * NR * index_t(sizeof(T));
    const index_t panel_strips = std::max<index_t>(
        1, std::min(kPanelBytes / strip_bytes, (strips + workers - 1) / workers));
    const index_t slot = ((K + M) * NR * panel_strips + align - 1) / align * align;
    return {strips, panel_strips, slot, workers};
  }

  // Calls body(q0, cols, Q, ldq) for column panels [q0, q0 + cols) of [0, ncols), with
  // Q [M, ldq] holding those columns of the product A B:   A: [M, lda] (K columns)   B: [K, ldb].
  // A panel's product is complete before body runs, so body may overwrite the panel's columns of B
  // (and nothing else of B). Shallow panels (K <= kDirectDepth) are read in place, deeper ones
  // copied strip by strip first. Threads take equal runs of strips when the product is large.
  template <class T, class Body>
  void for_product_blocks(index_t M, index_t K, index_t ncols, const T* A, index_t lda,
                          const T* B, index_t ldb, const Body& body) {
    for_product_blocks(M, ncols, A, lda, ProductSlabs<T>{B, ldb, K}, body);
  }

  // The same with B given as two slabs of rows over the same columns (ProductSlabs, common.hpp):
  // A: [M, lda] (K1 + K2 columns).
  template <class T, class Body>
  void for_product_blocks(index_t M, index_t ncols, const T* A, index_t lda,
                          const ProductSlabs<T>& B, const Body& body) {
    constexpr index_t NR = panel::kStrip<T>;
    const index_t K = B.depth();
    const ProductPlan plan = product_plan<T>(M, K, ncols);
    T* scratch = scratch_space<T>(plan.workers * plan.slot);
    auto run = [&](index_t j0, index_t j1, T* mine) {
      T* packed = mine;
      T* Q = mine + K * NR * plan.panel_strips;
      const index_t ldq = NR * plan.panel_strips;
      for (index_t j = j0; j < j1; j += plan.panel_strips) {
        const index_t strips = std::min(plan.panel_strips, j1 - j);
        const index_t q0 = j * NR, cols = std::min(strips * NR, ncols - q0);
        if (B.K2 == 0 && K <= kDirectDepth && cols == strips * NR) {  // a few rows: read in place
          panel::multiply(M, cols, K, A, lda, B.B1 + q0, NR, B.ldb1, 0, strips, false, Q, ldq);
        } else {
          panel::pack(B.K1, B.B1 + q0, B.ldb1, cols, packed, K * NR);
          if (B.K2 > 0) panel::pack(B.K2, B.B2 + q0, B.ldb2, cols, packed + B.K1 * NR, K * NR);
          panel::multiply(M, strips * NR, K, A, lda, packed, K * NR, NR, 0, strips, false, Q, ldq);
        }
        body(q0, cols, Q, ldq);
      }
    };
    if (plan.workers == 1) {
      run(0, plan.strips, scratch);
      return;
    }
    in_equal_runs(plan.workers, plan.strips,
                  [&](index_t j0, index_t j1, int t) { run(j0, j1, scratch + t * plan.slot); });
  }

 private:
  // f(lo, hi, t) on up to `workers` threads, thread t taking the run [lo, hi) of [0, count) that
  // an equal split gives it.
  template <class F>
  void in_equal_runs(int workers, index_t count, const F& f) {
#pragma omp parallel num_threads(workers)
    {
      const int t = omp_get_thread_num(), parts = omp_get_num_threads();
      f(count * t / parts, count * (t + 1) / parts, t);
    }
  }

  static constexpr double kParallelFlops = 1.0e6;
  static constexpr index_t kGemmPartMin = 128;  // rows or columns of a part of a large GEMM, at least
  static constexpr index_t kGemmMaxParts = 16;
  static constexpr index_t kParallelItems = 1 << 15;
  static constexpr index_t kTileItems = 4096;  // a for_each_serial_k tile's columns
  static constexpr double kParallelProductFlops = 1.0e6;
  static constexpr index_t kCacheLine = 64;
  static constexpr index_t kPanelBytes = 24 * 1024;
  // Up to this many rows a panel's strips are read in place (the rows of a strip then stay in L1
  // between the row tiles); deeper panels are copied first.
  static constexpr index_t kDirectDepth = 32;

  // Scratch reused across the calls of one context (one native call), aligned to a cache line.
  template <class T>
  T* scratch_space(index_t count) {
    constexpr size_t line_words = kCacheLine / sizeof(double);
    const size_t words = (size_t(count) * sizeof(T) + sizeof(double) - 1) / sizeof(double);
    if (scratch_.size() < words + line_words) scratch_.resize(words + line_words);
    const auto address = reinterpret_cast<std::uintptr_t>(scratch_.data());
    return reinterpret_cast<T*>((address + kCacheLine - 1) / kCacheLine * kCacheLine);
  }

  int threads_;
  std::vector<double> scratch_;
};

}  // namespace rtrl
