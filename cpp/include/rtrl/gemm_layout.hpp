// Row-major GEMM expressed as the column-major call that computes it (cuBLAS is column-major).
//
// A row-major matrix C[M, N] with leading dimension ldc is, in memory, the column-major matrix
// C^T[N, M] with the same leading dimension. So row-major C = op(A) op(B) is column-major
// C^T = op(B)^T op(A)^T: swap the operands and M with N, keep each operand's transpose flag.
#pragma once

#include "rtrl/common.hpp"

namespace rtrl {

template <class T>
struct ColMajorGemm {
  bool trans_a, trans_b;
  index_t m, n, k;
  const T* a;
  index_t lda;
  const T* b;
  index_t ldb;
  index_t ldc;
};

// Row-major C[M, N] = alpha op(A)[M, K] op(B)[K, N] + beta C; returns the column-major operands
// (first operand `a`, second `b`) of the same product.
template <class T>
ColMajorGemm<T> row_major_as_col_major(bool trans_a, bool trans_b, index_t M, index_t N, index_t K,
                                       const T* A, index_t lda, const T* B, index_t ldb,
                                       index_t ldc) {
  return ColMajorGemm<T>{trans_b, trans_a, N, M, K, B, ldb, A, lda, ldc};
}

}  // namespace rtrl
