// Products with a small left operand on the CPU, by register tiles over strips of a packed right
// operand: tile() computes kTileRows rows of A times one strip of kStrip(T) columns (two vectors per
// row), K rank-one updates held in registers.
//
// Two uses. The sensitivity propagation Q = A P[:, panel] (A the recurrent matrix, P wide): a deep
// panel of P's columns is copied strip by strip (pack), so that a strip's rows lie together rather
// than a row of P apart, and the panel, Q and A stay in L1/L2 for the pass that follows, where a
// BLAS call per block would re-pack P, zero a cache-sized Q and write it out before the pass reads
// it back. And the layers'
// per-step recurrent product C = h op(W_hh): W_hh is packed once per sequence (pack_operand), where
// a BLAS call would pack it again at every step. The vectors are GCC/Clang vector extensions, sized
// to the widest registers the build targets.
#pragma once

#include <algorithm>
#include <cstring>

#include "rtrl/common.hpp"

namespace rtrl {
namespace panel {

#if defined(__AVX512F__)
constexpr int kVectorBytes = 64;
constexpr int kTileRows = 8;  // 16 accumulators of 32
#elif defined(__AVX__)
constexpr int kVectorBytes = 32;
constexpr int kTileRows = 6;  // 12 accumulators of 16
#else
constexpr int kVectorBytes = 16;
constexpr int kTileRows = 6;
#endif
constexpr int kVectorsPerRow = 2;

template <class T>
struct Vector {
  typedef T type __attribute__((vector_size(kVectorBytes)));
  // The same vector at an address aligned only to T (P's rows, the scratch).
  typedef T unaligned __attribute__((vector_size(kVectorBytes), aligned(alignof(T))));
  static constexpr index_t lanes = kVectorBytes / index_t(sizeof(T));
};

// Columns of one register tile: a panel is a whole number of strips.
template <class T>
constexpr index_t kStrip = kVectorsPerRow * Vector<T>::lanes;

// Pp[j, k, c] = P[k, j kStrip + c] for the strips j of the panel's cols columns, zero past cols.
//   P: [K, ldp]   Pp: strips strip_stride apart (default K kStrip), each [K, kStrip]
template <class T>
inline void pack(index_t K, const T* P, index_t ldp, index_t cols, T* Pp, index_t strip_stride = 0) {
  using V = typename Vector<T>::unaligned;
  constexpr index_t NR = kStrip<T>, lanes = Vector<T>::lanes;
  if (strip_stride == 0) strip_stride = K * NR;
  for (index_t j = 0; j * NR < cols; ++j, P += NR, Pp += strip_stride) {
    const index_t width = std::min(NR, cols - j * NR);
    if (width == NR) {
      for (index_t k = 0; k < K; ++k)
        for (int v = 0; v < kVectorsPerRow; ++v)
          *reinterpret_cast<V*>(Pp + k * NR + v * lanes) =
              *reinterpret_cast<const V*>(P + k * ldp + v * lanes);
      continue;
    }
    for (index_t k = 0; k < K; ++k) {
      std::memcpy(Pp + k * NR, P + k * ldp, size_t(width) * sizeof(T));
      std::memset(Pp + k * NR + width, 0, size_t(NR - width) * sizeof(T));
    }
  }
}

// C[i, :cols] (=, or += when accumulate) sum_k A[i, k] Bs[k, :cols] for i in [0, MR).
//   A: [MR, lda]   Bs: [K, ldb] (a strip, kStrip columns)   C: [MR, ldc]   cols <= kStrip
template <int MR, class T>
inline void tile(index_t K, const T* A, index_t lda, const T* Bs, index_t ldb, T* C, index_t ldc,
                 index_t cols, bool accumulate) {
  using V = typename Vector<T>::type;
  using U = typename Vector<T>::unaligned;
  constexpr index_t NR = kStrip<T>, lanes = Vector<T>::lanes;
  V acc[MR][kVectorsPerRow];
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kVectorsPerRow; ++v) acc[i][v] = V{};
  for (index_t k = 0; k < K; ++k) {
    V b[kVectorsPerRow];
#pragma GCC unroll 4
    for (int v = 0; v < kVectorsPerRow; ++v) b[v] = *reinterpret_cast<const U*>(Bs + k * ldb + v * lanes);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T a = A[i * lda + k];
#pragma GCC unroll 4
      for (int v = 0; v < kVectorsPerRow; ++v) acc[i][v] += a * b[v];
    }
  }
  if (cols == NR && !accumulate) {
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
      for (int v = 0; v < kVectorsPerRow; ++v) *reinterpret_cast<U*>(C + i * ldc + v * lanes) = acc[i][v];
    return;
  }
  for (int i = 0; i < MR; ++i) {  // a partial strip or C += (rare: tails, GRU's backward)
    alignas(kVectorBytes) T row[NR];
    for (int v = 0; v < kVectorsPerRow; ++v) *reinterpret_cast<U*>(row + v * lanes) = acc[i][v];
    for (index_t c = 0; c < cols; ++c) C[i * ldc + c] = accumulate ? C[i * ldc + c] + row[c] : row[c];
  }
}

// C[:, j kStrip : ...] (=, or += when accumulate) A B[j] for the strips j in [j0, j1) of an
// operand B with N columns: strip j starts at Bp + j strip_stride, its rows ldb apart (packed:
// strip_stride = K kStrip, ldb = kStrip; read in place: strip_stride = kStrip, ldb = B's row stride,
// and N a multiple of kStrip).
//   A: [M, lda] (K columns)   C: [M, ldc]
template <class T>
inline void multiply(index_t M, index_t N, index_t K, const T* A, index_t lda, const T* Bp,
                     index_t strip_stride, index_t ldb, index_t j0, index_t j1, bool accumulate,
                     T* C, index_t ldc) {
  constexpr index_t NR = kStrip<T>;
  for (index_t j = j0; j < j1; ++j) {
    const T* Pj = Bp + j * strip_stride;
    T* Cj = C + j * NR;
    const index_t cols = std::min(NR, N - j * NR);
    index_t i = 0;
    for (; i + kTileRows <= M; i += kTileRows)
      tile<kTileRows>(K, A + i * lda, lda, Pj, ldb, Cj + i * ldc, ldc, cols, accumulate);
    if (M - i >= 4) {
      tile<4>(K, A + i * lda, lda, Pj, ldb, Cj + i * ldc, ldc, cols, accumulate);
      i += 4;
    }
    if (M - i >= 2) {
      tile<2>(K, A + i * lda, lda, Pj, ldb, Cj + i * ldc, ldc, cols, accumulate);
      i += 2;
    }
    if (M - i >= 1) tile<1>(K, A + i * lda, lda, Pj, ldb, Cj + i * ldc, ldc, cols, accumulate);
  }
}

// Packs B [K, N] (or B^T when trans: B is [N, ldb]) into strips:
//   Pp[j, k, c] = op(B)[k, j kStrip + c], zero past N.   Pp: [ceil(N / kStrip), K, kStrip]
template <class T>
inline void pack_operand(bool trans, index_t K, index_t N, const T* B, index_t ldb, T* Pp) {
  constexpr index_t NR = kStrip<T>;
  for (index_t j = 0; j * NR < N; ++j)
    for (index_t k = 0; k < K; ++k)
      for (index_t c = 0; c < NR; ++c) {
        const index_t col = j * NR + c;
        Pp[(j * K + k) * NR + c] = col >= N ? T(0) : trans ? B[col * ldb + k] : B[k * ldb + col];
      }
}

}  // namespace panel
}  // namespace rtrl
