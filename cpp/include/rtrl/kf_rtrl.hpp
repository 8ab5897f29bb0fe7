// KF-RTRL (Mujika et al. 2018; DESIGN §9): for the fully recurrent network, the rnn and the LSTM the
// immediate term is a Kronecker product, I_t = A_t (x) v_t^T (A_t: state x parameter rows, each row's
// unit alone; v_t = [x; h; 1] the values every row's weights multiply), so the sensitivities are kept
// as J ~ A (x) u^T per stream: A [S, rows], u [W]. With signs c1, c2 fresh each step,
//   p1 = sqrt(|D_t A| / |u|), p2 = sqrt(|A_t| / |v|),
//   u <- c1 p1 u + c2 p2 v,  A <- c1 (D_t A) / p1 + c2 A_t / p2,
// unbiased because E[c1 c2] = 0; the gradient is g[r, j] = sum_s (delta_s^T A_s)[r] u_s[j].
// A is laid out as exact RTRL's sensitivities with one column per parameter row (A_h [H, B rows],
// column s rows + r), so that D_t A is exact RTRL's product and pass over `rows` columns.
#pragma once

#include "rtrl/diagonal_traces.hpp"
#include "rtrl/float_bits.hpp"
#include "rtrl/philox.hpp"
#include "rtrl/uoro.hpp"

namespace rtrl {

// R[s, x H + u] = dh'_u / dA_x and dc'_u / dA_x: the cell's response to its pre-activation row. f(s, u)
//   coef: [K, B, H]   R_h, R_c: [B, G H]
template <class Cell, class T, bool kLeaky>
struct KfResponse {
  index_t H, B;
  const T* coef;
  T* R_h;
  T* R_c;
  RTRL_HD void operator()(index_t s, index_t u) const {
    CellSensitivityRow<T> row{};
    T q[Cell::kGates];
    for (int x = 0; x < Cell::kGates; ++x) row.q[x] = q + x;
    for (int m = 0; m < Cell::kCoefficients; ++m) row.k[m] = coef[(m * B + s) * H + u];
    for (int x = 0; x < Cell::kGates; ++x) {
      for (int y = 0; y < Cell::kGates; ++y) q[y] = T(0);
      q[x] = T(1);
      T r_h = T(0), r_c = T(0);
      row.p_h = &r_h;
      row.p_c = &r_c;
      Cell::template propagate<true, kLeaky>(row, 0);
      const index_t at = s * Cell::kGates * H + x * H + u;
      R_h[at] = r_h;
      if (R_c) R_c[at] = r_c;
    }
  }
};

// sums[s, r] = sum_u A_h[u, s rows + r]^2 (+ A_c^2), the units summed in order: through
// ctx.for_each_serial_k over the columns q = s rows + r with the units as depth, so that each unit's
// row of A is read along its length (row(s, u) finds it).   A_h, A_c: [units, ld = B rows]
//   sums: [B, rows]
template <class T>
struct KfColumnRow {
  const T* h;
  const T* c;
  T* out;
  bool first;
};

template <class T, bool kCellState>
struct KfColumnNorms {
  index_t rows, ld;
  const T* A_h;
  const T* A_c;
  T* sums;
  RTRL_HD KfColumnRow<T> row(index_t s, index_t u) const {
    return {A_h + u * ld + s * rows, kCellState ? A_c + u * ld + s * rows : nullptr, sums + s * rows, u == 0};
  }
  RTRL_HD void operator()(const KfColumnRow<T>& w, index_t, index_t, index_t r) const {
    const T h = w.h[r], c = kCellState ? w.c[r] : T(0);
    w.out[r] = (w.first ? T(0) : w.out[r]) + (h * h + c * c);
  }
};

// The same for both cells' state parts: A_c null for the rnn's.
template <class Ctx, class T>
void kf_column_norms(Ctx& ctx, index_t units, index_t rows, index_t batch, const T* A_h, const T* A_c, T* sums) {
  const index_t ld = batch * rows;
  if (A_c) ctx.for_each_serial_k(0, ld, rows, units, KfColumnNorms<T, true>{rows, ld, A_h, A_c, sums});
  else ctx.for_each_serial_k(0, ld, rows, units, KfColumnNorms<T, false>{rows, ld, A_h, nullptr, sums});
}

// Per stream: p1, p2 from the norms, u <- c1 p1 u + c2 p2 v, and the factors k = (c1 / p1, c2 / p2)
// of A's update. f(s)
//   sums: [B, rows]   R_h, R_c: [B, rows] A_t's entries   u, v: [B, W]   k: [B, 2]
template <class T>
struct KfScales {
  index_t rows, W;
  const T* sums;
  const T* R_h;
  const T* R_c;
  T* u;
  const T* v;
  T* k;
  Philox rng;
  std::int64_t step;
  index_t element;  // of this layer's c1 (c2 follows)
  RTRL_HD void operator()(index_t s) const {
    T da = T(0), at = T(0), uu = T(0), vv = T(0);
    for (index_t r = 0; r < rows; ++r) {
      const T h = R_h[s * rows + r], c = R_c ? R_c[s * rows + r] : T(0);
      da += sums[s * rows + r];
      at += h * h + c * c;
    }
    for (index_t j = 0; j < W; ++j) {
      uu += u[s * W + j] * u[s * W + j];
      vv += v[s * W + j] * v[s * W + j];
    }
    const T eps = uoro_eps<T>();
    const T p1 = math::sqrt((math::sqrt(da) + eps) / (math::sqrt(uu) + eps));
    const T p2 = math::sqrt((math::sqrt(at) + eps) / (math::sqrt(vv) + eps));
    const T c1 = rng.sign<T>(step, s, element), c2 = rng.sign<T>(step, s, element + 1);
    for (index_t j = 0; j < W; ++j) u[s * W + j] = c1 * p1 * u[s * W + j] + c2 * p2 * v[s * W + j];
    k[s * 2] = c1 / p1;
    k[s * 2 + 1] = c2 / p2;
  }
};

// A <- k0 (D_t A) + k1 A_t, A_t's column s rows + r holding R[s, r] in row r mod units only. A's
// [units, B rows] entries taken as rows of `units` values, row = (i B + s) G + g for unit i,
// stream s and gate block g (rows = G units): the divisions once per row, not per entry. f(row, j)
//   A: [units, B rows] (holding D_t A)   R: [B, rows]   k: [B, 2]
template <class T>
struct KfUpdate {
  index_t units, rows, batch;
  const T* R;
  const T* k;
  T* A;
  T scale;  // 1; below 1 the unbiasedness tests' deliberately biased control
  RTRL_HD void operator()(index_t row, index_t j) const {
    const index_t blocks = rows / units, o = row / blocks, g = row % blocks, i = o / batch, s = o % batch;
    const index_t at = row * units + j;
    // read and scaled for every j, chosen without a branch: a load or a product in a branch keeps
    // the loop scalar
    const T fresh = select_bits(j == i, scale * R[s * rows + g * units + j], T(0));
    A[at] = k[s * 2] * A[at] + k[s * 2 + 1] * fresh;
  }
};

// Runs KfUpdate over A [units, B rows].
template <class Ctx, class T>
void kf_update(Ctx& ctx, index_t units, index_t rows, index_t batch, const T* R, const T* k, T* A, T scale) {
  ctx.for_each_2d(units * batch * (rows / units), units, KfUpdate<T>{units, rows, batch, R, k, A, scale});
}

// w[s, r] = sum_i delta[s, i] A_h[i, s rows + r], the per-stream factor of the gradient, the units
// summed in order: ctx.for_each_serial_k over the columns q = s rows + r with the units as depth.
//   delta: [B, units]   A_h: [units, B rows]   w: [B, rows]
template <class T>
struct KfContractRow {
  T delta;
  const T* a;
  T* out;
  bool first;
};

template <class T>
struct KfContract {
  index_t units, rows, batch;
  const T* delta;
  const T* A_h;
  T* w;
  RTRL_HD KfContractRow<T> row(index_t s, index_t i) const {
    return {delta[s * units + i], A_h + i * batch * rows + s * rows, w + s * rows, i == 0};
  }
  RTRL_HD void operator()(const KfContractRow<T>& x, index_t, index_t, index_t r) const {
    x.out[r] = (x.first ? T(0) : x.out[r]) + x.delta * x.a[r];
  }
};

// The fully recurrent network: D_t A = diag(f') W_U A, so A[k, q] = f'[s, k] Q[k, q]; delta[s, k] is
// dL/dy_k; afterwards a forced unit's row is zeroed (its value does not depend on the weights).
//   f(k, q)   Q, A: [n, B n]   slope: [B, n]
template <class T>
struct KfFullyRecurrentSlope {
  index_t n;
  const T* slope;
  const T* Q;
  T* A;
  index_t ld;
  RTRL_HD void operator()(index_t k, index_t q) const { A[k * ld + q] = slope[(q / n) * n + k] * Q[k * ld + q]; }
};

// out[i] = scale in[i]   (dL/dy from the units' errors)
template <class T>
struct ScaledCopy {
  T scale;
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t i) const { out[i] = scale * in[i]; }
};

//   f(k, q)   A: [n, B n]   keep: [B, n]
template <class T>
struct KfZeroForced {
  index_t n, ld;
  const T* keep;
  T* A;
  RTRL_HD void operator()(index_t k, index_t q) const {
    if (keep[(q / n) * n + k] == T(0)) A[k * ld + q] = T(0);
  }
};

}  // namespace rtrl
