// The product Q = A P[:, panel] for the sensitivity propagation on the CPU, one panel of P's
// columns at a time.
//
// A (the recurrent matrix, M x K) is small and P is wide. A panel of P's columns is copied, strip by
// strip of kStrip(T) columns, into a contiguous buffer Pp first, so the caller may overwrite those
// columns of P once the product is taken; Q [M, panel] is then computed in register tiles of
// kTileRows rows by one strip (two vectors per row), K rank-one updates each. Pp, Q and A stay in L1/L2, where a
// BLAS call per block would re-pack P, zero a cache-sized Q and write it out before the pass reads
// it back. The vectors are GCC/Clang vector extensions, sized to the widest registers the build
// targets.
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
//   P: [K, ldp]   Pp: [ceil(cols / kStrip), K, kStrip]
template <class T>
inline void pack(index_t K, const T* P, index_t ldp, index_t cols, T* Pp) {
  using V = typename Vector<T>::unaligned;
  constexpr index_t NR = kStrip<T>, lanes = Vector<T>::lanes;
  for (index_t j = 0; j * NR < cols; ++j, P += NR, Pp += K * NR) {
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

// Q[i, :] = sum_k A[i, k] Pp[k, :] for i in [0, MR).   A: [MR, lda]   Pp: [K, kStrip]   Q: [MR, ldq]
template <int MR, class T>
inline void tile(index_t K, const T* A, index_t lda, const T* Pp, T* Q, index_t ldq) {
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
    for (int v = 0; v < kVectorsPerRow; ++v) b[v] = *reinterpret_cast<const U*>(Pp + k * NR + v * lanes);
#pragma GCC unroll 16
    for (int i = 0; i < MR; ++i) {
      const T a = A[i * lda + k];
#pragma GCC unroll 4
      for (int v = 0; v < kVectorsPerRow; ++v) acc[i][v] += a * b[v];
    }
  }
#pragma GCC unroll 16
  for (int i = 0; i < MR; ++i)
#pragma GCC unroll 4
    for (int v = 0; v < kVectorsPerRow; ++v) *reinterpret_cast<U*>(Q + i * ldq + v * lanes) = acc[i][v];
}

// Q[:, j kStrip : (j + 1) kStrip] = A Pp[j] for the strips j in [0, strips).
//   A: [M, lda] (K columns)   Pp: [strips, K, kStrip]   Q: [M, ldq], ldq >= strips kStrip
template <class T>
inline void product(index_t M, index_t K, const T* A, index_t lda, const T* Pp, index_t strips,
                    T* Q, index_t ldq) {
  constexpr index_t NR = kStrip<T>;
  for (index_t j = 0; j < strips; ++j, Pp += K * NR, Q += NR) {
    index_t i = 0;
    for (; i + kTileRows <= M; i += kTileRows) tile<kTileRows>(K, A + i * lda, lda, Pp, Q + i * ldq, ldq);
    if (M - i >= 4) {
      tile<4>(K, A + i * lda, lda, Pp, Q + i * ldq, ldq);
      i += 4;
    }
    if (M - i >= 2) {
      tile<2>(K, A + i * lda, lda, Pp, Q + i * ldq, ldq);
      i += 2;
    }
    if (M - i >= 1) tile<1>(K, A + i * lda, lda, Pp, Q + i * ldq, ldq);
  }
}

}  // namespace panel
}  // namespace rtrl
