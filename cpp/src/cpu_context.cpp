#include "cpu_context.hpp"

#include <cblas.h>

namespace rtrl {

static CBLAS_TRANSPOSE cblas_trans(bool t) { return t ? CblasTrans : CblasNoTrans; }

void cpu_gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, float alpha,
              const float* A, index_t lda, const float* B, index_t ldb, float beta, float* C,
              index_t ldc) {
  if (M == 0 || N == 0) return;
  scipy_cblas_sgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), blasint(M),
                    blasint(N), blasint(K), alpha, A, blasint(lda), B, blasint(ldb), beta, C,
                    blasint(ldc));
}

void cpu_gemm(bool trans_a, bool trans_b, index_t M, index_t N, index_t K, double alpha,
              const double* A, index_t lda, const double* B, index_t ldb, double beta, double* C,
              index_t ldc) {
  if (M == 0 || N == 0) return;
  scipy_cblas_dgemm(CblasRowMajor, cblas_trans(trans_a), cblas_trans(trans_b), blasint(M),
                    blasint(N), blasint(K), alpha, A, blasint(lda), B, blasint(ldb), beta, C,
                    blasint(ldc));
}

void cpu_backend_init() { scipy_openblas_set_num_threads(1); }

}  // namespace rtrl
