// UORO (Tallec & Ollivier 2018; DESIGN §9): per stream a rank-one estimate s~ theta~^T of the
// sensitivities, unbiased over the random signs nu in {+-1}^S drawn fresh each step. Per step:
//   s~' = D_t s~ (one Jacobian-vector product), theta~_nu = nu^T I_t,
//   rho0 = sqrt(|theta~| / |s~'|), rho1 = sqrt(|theta~_nu| / |nu|) (eps-guarded),
//   s~ <- rho0 s~' + rho1 nu,  theta~ <- theta~ / rho0 + theta~_nu / rho1,
//   gradient (delta_t . s~) theta~.
// theta~ has the layout of the unit-diagonal traces (diagonal_traces.hpp), one copy per stream:
// nu^T I_t of parameter (g', c) is A[s, row, u] v_c with A the signs carried back through the cell's
// response to its pre-activation row, so theta~_nu is never stored. Per stream s the signs are
// Philox(seed) at (step, s, element), element = (l P + part) H + u for layer l's state part.
#pragma once

#include <cmath>
#include <cstdint>

#include "rtrl/diagonal_traces.hpp"
#include "rtrl/philox.hpp"
#include "rtrl/row_functor.hpp"

namespace rtrl {

// What a stochastic learner's random numbers are keyed and indexed by.
struct RandomStream {
  std::uint64_t seed = 0;
  std::int64_t step = 0;  // the learner's step count at the call's first step
  double immediate_scale = 1.0;  // 1; the unbiasedness tests' deliberately biased control below 1
  std::int64_t first_stream = 0;  // the global index of stream 0: a stream-parallel rank's first
};

template <class T>
RTRL_HD T uoro_eps() {
  return T(1e-7);
}

// One layer's signs, nu[s, i] = the sign at (step, s, element + i) for its state parts' entries
// i = part H + u, a generator block (Philox::kSignsPerBlock signs) at a time. f(s, b) for the blocks
// b in [0, blocks(n, element)) that the entries [element, element + n) touch.
//   nu: [B, parts, H]
template <class T>
struct UoroSigns {
  index_t n;  // parts H
  Philox rng;
  std::int64_t step;
  index_t element;  // of this layer's first h entry
  T* nu;
  static index_t blocks(index_t n, index_t element) {
    constexpr index_t K = Philox::kSignsPerBlock;
    return n > 0 ? (element + n - 1) / K - element / K + 1 : 0;
  }
  RTRL_HD void operator()(index_t s, index_t b) const {
    constexpr index_t K = Philox::kSignsPerBlock;
    const index_t block = element / K + b, e0 = block * K;
    std::uint32_t w[4];
    rng.words(step, s, block, w);
    const index_t lo = e0 > element ? e0 : element, hi = e0 + K < element + n ? e0 + K : element + n;
    for (index_t e = lo; e < hi; ++e) nu[s * n + e - element] = Philox::sign_of<T>(w, e);
  }
};

// s~ <- D_t s~ for one layer, and A[s, x, u] = scale (nu_h dh'_u/dA_x + nu_c dc'_u/dA_x) for each
// pre-activation row x (its input side last for the GRU's n gate). f(s, u).
//   coef: [K, B, H]   hw: [B, G H] w_hh s~_h (the GRU's n rows: W_hn s~_h)
//   tilde_h, tilde_c: [B, H] in: s~, out: D_t s~   nu: [B, parts, H] (UoroSigns)   A: [B, rows, H]
template <class Cell, class T, bool kLeaky>
struct UoroStateStep {
  static constexpr index_t kItemCost = 16;  // the cell's pass for each pre-activation row
  index_t H, B;
  const T* coef;
  const T* hw;
  T* tilde_h;
  T* tilde_c;
  const T* nu;
  T* A;
  T scale;          // 1; below 1 a deliberately biased estimate (the unbiasedness tests' control)
  static constexpr int kRows = TraceRows<Cell>::kCount;
  RTRL_HD void operator()(index_t s, index_t u) const {
    const index_t at = s * H + u, GH = Cell::kGates * H;
    CellSensitivityRow<T> row{};
    T q[kRows];
    for (int x = 0; x < kRows; ++x) row.q[x] = q + x;
    for (int m = 0; m < Cell::kCoefficients; ++m) row.k[m] = coef[(m * B + s) * H + u];
    for (int x = 0; x < kRows; ++x) q[x] = x < Cell::kGates ? hw[s * GH + x * H + u] : T(0);
    T p_h = tilde_h[at], p_c = tilde_c ? tilde_c[at] : T(0);
    row.p_h = &p_h;
    row.p_c = &p_c;
    Cell::template propagate<true, kLeaky>(row, 0);
    tilde_h[at] = p_h;
    if (tilde_c) tilde_c[at] = p_c;
    const index_t parts = tilde_c ? 2 : 1;
    const T nu_h = nu[s * parts * H + u];
    const T nu_c = tilde_c ? nu[(s * parts + 1) * H + u] : T(0);
    for (int x = 0; x < kRows; ++x) {
      for (int y = 0; y < kRows; ++y) q[y] = T(0);
      q[x] = T(1);
      T r_h = T(0), r_c = T(0);
      row.p_h = &r_h;
      row.p_c = &r_c;
      Cell::template propagate<true, kLeaky>(row, 0);
      A[(s * kRows + x) * H + u] = scale * (nu_h * r_h + nu_c * r_c);
    }
  }
};

// |t[0, W)|^2 in row_lane_sum's order: every norm of a theta~ row is taken in it, so a norm carried
// from the last step (UoroParamStep's row sums) and one taken afresh (UoroRowNorms) are the same bits.
template <class T>
RTRL_HD T uoro_row_norm2(const T* t, index_t W) {
  return row_lane_sum<T>(W, [t](index_t c) { return t[c] * t[c]; });
}

// Per stream and parameter row: norms[s, r] = |theta~[s, r, :]|^2 (at a call's start; afterwards
// each step's parameter pass leaves them for the next, UoroParamStep::finish). f(s, r)
//   theta: [B, G H, W]   norms: [B, G H]
template <class T>
struct UoroRowNorms {
  static constexpr index_t kItemCost = 16;  // a vector loop over the row's W columns
  index_t W, GH;
  const T* theta;
  T* norms;
  RTRL_HD void operator()(index_t s, index_t r) const {
    norms[s * GH + r] = uoro_row_norm2(theta + (s * GH + r) * W, W);
  }
};

// Per stream: rho0, rho1 from the norms, s~ <- rho0 s~' + rho1 nu, and kappa = delta . s~_h. f(s)
// |theta~|^2 sums the rows' norms; |theta~_nu|^2 sums, over the rows, the row's signs' response a
// times the column values — a_gate v_c on the gate's side of the row, a_input v_c on its input side
// (the GRU's n gate; the same response elsewhere), the eLSTM's w_hh column h_prev[u] (v holds 0
// there) — without forming it: a_gate^2 (|v_gate|^2 + h_own^2) + a_input^2 |v_input|^2.
//   norms: [B, G H]   A: [B, rows, H]   v: [B, W]   h_prev: [B, H]   tilde_h, tilde_c: [B, H]
//   nu: [B, parts, H] (UoroSigns)   delta: [B, H]   rho: [B, 3] (rho0, rho1, kappa)
template <class Cell, class T>
struct UoroScales {
  static constexpr index_t kItemCost = 2048;  // loops over the stream's G H rows and H units
  CellLayerDims d;
  const T* norms;
  const T* A;
  const T* v;
  const T* h_prev;
  T* tilde_h;
  T* tilde_c;
  const T* nu;
  const T* delta;
  T* rho;
  RTRL_HD void operator()(index_t s) const {
    constexpr int rows = TraceRows<Cell>::kCount;
    const index_t H = d.hidden, W = d.width(), GH = d.gates() * H, I = d.inputs, R = d.recurrent_cols();
    T gate_side = T(0), input_side = T(0);
    for (index_t c = 0; c < W; ++c) {
      const T x = v[s * W + c];
      if (c < I || c == I + R) input_side += x * x;
      else gate_side += x * x;
    }
    T old = T(0), fresh = T(0), state = T(0);
    for (index_t r = 0; r < GH; ++r) old += norms[s * GH + r];
    for (int gate = 0; gate < int(d.gates()); ++gate)
      for (index_t u = 0; u < H; ++u) {
        const T a_gate = A[(s * rows + gate) * H + u];
        const T a_input = A[(s * rows + TraceRows<Cell>::input_side(gate)) * H + u];
        const T own = Cell::kElementwiseRecurrence ? h_prev[s * H + u] : T(0);
        fresh += a_gate * a_gate * (gate_side + own * own) + a_input * a_input * input_side;
      }
    for (index_t u = 0; u < H; ++u) {
      const T h = tilde_h[s * H + u], c = tilde_c ? tilde_c[s * H + u] : T(0);
      state += h * h + c * c;
    }
    const T eps = uoro_eps<T>(), nu_norm = math::sqrt(T((tilde_c ? 2 : 1) * H));
    const T rho0 = math::sqrt((math::sqrt(old) + eps) / (math::sqrt(state) + eps));
    const T rho1 = math::sqrt((math::sqrt(fresh) + eps) / (nu_norm + eps));
    T kappa = T(0);
    const index_t parts = tilde_c ? 2 : 1;
    for (index_t u = 0; u < H; ++u) {
      const index_t at = s * H + u;
      tilde_h[at] = rho0 * tilde_h[at] + rho1 * nu[s * parts * H + u];
      if (tilde_c) tilde_c[at] = rho0 * tilde_c[at] + rho1 * nu[(s * parts + 1) * H + u];
      kappa += delta[at] * tilde_h[at];
    }
    rho[s * 3] = rho0;
    rho[s * 3 + 1] = rho1;
    rho[s * 3 + 2] = kappa;
  }
};

// theta~ <- theta~ / rho0 + theta~_nu / rho1 and G[g', c] = sum_s kappa_s theta~[s, g', c], through
// ctx.for_each_serial_k over the columns q = g' W + c with the streams as depth (row(g', s) gathers
// what depends on the row and stream only; finish(g', s) the new row's norm).
//   theta: [B, G H, W]   A: [B, rows, H]   v: [B, W]   h_prev: [B, H]   rho: [B, 3]   G: [G H, W]
//   norms: [B, G H]
template <class T>
struct UoroRow {
  T* theta;
  T* g;
  const T* v;
  T a_gate, a_input, inv_rho0, inv_rho1, kappa, h_own;
  bool first;
};

template <class Cell, class T>
struct UoroParamStep {
  CellLayerDims d;
  T* theta;
  const T* A;
  const T* v;
  const T* h_prev;
  const T* rho;
  T* G;
  T* norms;  // [B, G H]: out, the rows' norms of the new theta~ (what the next step's UoroScales reads)
  RTRL_HD UoroRow<T> row(index_t r, index_t s) const {
    const index_t H = d.hidden, W = d.width(), GH = d.gates() * H, u = r % H;
    const int rows = TraceRows<Cell>::kCount, gate = int(r / H);
    UoroRow<T> t{};
    t.theta = theta + (s * GH + r) * W;
    t.g = G + r * W;
    t.v = v + s * W;
    t.a_gate = A[(s * rows + gate) * H + u];
    t.a_input = A[(s * rows + TraceRows<Cell>::input_side(gate)) * H + u];
    t.inv_rho0 = T(1) / rho[s * 3];
    t.inv_rho1 = T(1) / rho[s * 3 + 1];
    t.kappa = rho[s * 3 + 2];
    t.h_own = Cell::kElementwiseRecurrence ? h_prev[s * H + u] : T(0);
    t.first = s == 0;
    return t;
  }
  // Returns x^2: the row's sum is its new norm (row_functor.hpp).
  RTRL_HD T operator()(const UoroRow<T>& t, index_t, index_t, index_t c) const {
    const index_t I = d.inputs;
    const bool input_column = c < I || c == I + d.recurrent_cols();
    const T value = Cell::kElementwiseRecurrence && c == I ? t.h_own : t.v[c];
    const T x = t.theta[c] * t.inv_rho0 + (input_column ? t.a_input : t.a_gate) * value * t.inv_rho1;
    t.theta[c] = x;
    t.g[c] = (t.first ? T(0) : t.g[c]) + t.kappa * x;
    return x * x;
  }
  RTRL_HD T row_sum(index_t r, index_t s) const {
    const index_t GH = d.gates() * d.hidden, W = d.width();
    return uoro_row_norm2(theta + (s * GH + r) * W, W);
  }
  RTRL_HD void finish(index_t r, index_t s, T norm) const { norms[s * d.gates() * d.hidden + r] = norm; }
};

// The fully recurrent network (n units, z = [x; 1; y]): s~' = f' (W_U s~), A = scale f' nu.
// f(s, k).   W: [n, L]   tilde: [B, n]   next: [B, n] s~'   A: [B, n]   slope: [B, n]
template <class T>
struct FullyRecurrentUoroState {
  FullyRecurrentDims d;
  const T* W;
  const T* tilde;
  const T* slope;
  T* next;
  T* A;
  Philox rng;
  std::int64_t step;
  T scale;
  RTRL_HD void operator()(index_t s, index_t k) const {
    const index_t n = d.units, L = d.width(), at = s * n + k;
    const T* w = W + k * L + d.recurrent_offset();
    T sum = T(0);
    for (index_t m = 0; m < n; ++m) sum += w[m] * tilde[s * n + m];
    next[at] = slope[at] * sum;
    A[at] = scale * slope[at] * rng.sign<T>(step, s, k);
  }
};

// Per stream: the norms, rho0, rho1, s~ <- rho0 s~' + rho1 nu and kappa = delta . s~; then a forced
// unit's entry is zeroed (its value does not depend on the weights; the step's error is that of its
// own output, as exact RTRL contracts before zeroing). f(s)
//   theta: [B, n, L]   z: [B, L]   A, next, tilde, error, keep: [B, n]   rho: [B, 3]
template <class T>
struct FullyRecurrentUoroScales {
  FullyRecurrentDims d;
  T error_scale;  // -scale
  const T* theta;
  const T* z;
  const T* A;
  const T* next;
  const T* error;
  const T* keep;
  T* tilde;
  T* rho;
  Philox rng;
  std::int64_t step;
  RTRL_HD void operator()(index_t s) const {
    const index_t n = d.units, L = d.width();
    T old = T(0), zz = T(0), aa = T(0), state = T(0);
    for (index_t q = 0; q < n * L; ++q) old += theta[s * n * L + q] * theta[s * n * L + q];
    for (index_t j = 0; j < L; ++j) zz += z[s * L + j] * z[s * L + j];
    for (index_t k = 0; k < n; ++k) {
      aa += A[s * n + k] * A[s * n + k];
      state += next[s * n + k] * next[s * n + k];
    }
    const T eps = uoro_eps<T>();
    const T rho0 = math::sqrt((math::sqrt(old) + eps) / (math::sqrt(state) + eps));
    const T rho1 = math::sqrt((math::sqrt(aa * zz) + eps) / (math::sqrt(T(n)) + eps));
    T kappa = T(0);
    for (index_t k = 0; k < n; ++k) {
      const index_t at = s * n + k;
      const T t = rho0 * next[at] + rho1 * rng.sign<T>(step, s, k);
      kappa += error_scale * error[at] * t;
      tilde[at] = keep[at] != T(0) ? t : T(0);
    }
    rho[s * 3] = rho0;
    rho[s * 3 + 1] = rho1;
    rho[s * 3 + 2] = kappa;
  }
};

// theta~[s, k, j] <- theta~ / rho0 + A[s, k] z[s, j] / rho1;  G[k, j] = sum_s kappa_s theta~. f(k, j)
template <class T>
struct FullyRecurrentUoroParams {
  static constexpr index_t kItemCost = 2;
  FullyRecurrentDims d;
  const T* z;
  const T* A;
  const T* rho;
  T* theta;
  T* G;
  RTRL_HD void operator()(index_t k, index_t j) const {
    const index_t n = d.units, L = d.width();
    T acc = T(0);
    for (index_t s = 0; s < d.batch; ++s) {
      const index_t at = (s * n + k) * L + j;
      const T t = theta[at] / rho[s * 3] + A[s * n + k] * z[s * L + j] / rho[s * 3 + 1];
      theta[at] = t;
      acc += rho[s * 3 + 2] * t;
    }
    G[k * L + j] = acc;
  }
};

}  // namespace rtrl
