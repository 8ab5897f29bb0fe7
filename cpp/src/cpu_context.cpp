#include "cpu_context.hpp"

#include <cblas.h>

namespace rtrl {

static CBLAS_TRANSPOSE cblas_trans(bool t) { return t ? CblasTrans : CblasNoTrans; }

// A GEMM with one row (or column) of output is a matrix-vector product: BLAS's gemv streams the
// matrix once, where the gemm kernels pack it first.
template <class T, class Gemv>
static bool as_gemv(Gemv gemv, bool trans_a, bool trans_b, index_t M, index_t N, index_t K, T alpha,
                    const T* A, index_t lda, const T* B, index_t ldb, T beta, T* C, index_t ldc) {
  if (M == 1) {  // C[1, N] = a op(B): op(B)^T a
    gemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, blasint(trans_b ? N : K),
         blasint(trans_b ? K : N), alpha, B, blasint(ldb), A, blasint(trans_a ? lda : 1), beta, C,
         blasint(1));
    return true;
  }
  if (N == 1) {  // C[M, 1] = op(A) b
    gemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, blasint(trans_a ? K : M),
         blasint(trans_a ? M : K), alpha, A, blasint(lda), B, blasint(trans_b ? 1 : ldb), beta, C,
         blasint(ldc));
    return true;
  }
  return false;
}

void cpu_gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, float alpha,
              const float* A, index_t lda, const float* B, index_t ldb, float beta, float* C,
              index_t ldc) {
  if (M == 0 || N == 0) return;
  if (as_gemv<float>(scipy_cblas_sgemv, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
    return;
  scipy_cblas_sgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), blasint(M),
                    blasint(N), blasint(K), alpha, A, blasint(lda), B, blasint(ldb), beta, C,
                    blasint(ldc));
}

void cpu_gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, double alpha,
              const double* A, index_t lda, const double* B, index_t ldb, double beta, double* C,
              index_t ldc) {
  if (M == 0 || N == 0) return;
  if (as_gemv<double>(scipy_cblas_dgemv, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc))
    return;
  scipy_cblas_dgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), blasint(M),
                    blasint(N), blasint(K), alpha, A, blasint(lda), B, blasint(ldb), beta, C,
                    blasint(ldc));
}

void cpu_backend_init() { scipy_openblas_set_num_threads(1); }

}  // namespace rtrl
