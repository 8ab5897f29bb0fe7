// Exact RTRL for a recurrent cell (PyTorch's RNN, LSTM, GRU) with a linear readout (DESIGN §3.3).
//
// Recurrent parameters theta, one row per gate row g' in [0, G H), each row W = I + H + nb columns
// [w_ih row | w_hh row | bias_ih (| bias_hh)]: nb = 1 for RNN and LSTM, whose two biases have the
// same sensitivity (one is kept, both are reported), nb = 2 for GRU, whose b_hn sits inside r.
// Np = G H W. Sensitivities of all streams: P_h [H, B Np] (and P_c for LSTM), column q = s Np + c.
// v = [x | h_prev | 1 (| 1)] is the value each column multiplies (the immediate term's factor).
//
// The flat parameter vector holds, in order: w_ih [G H, I], w_hh [G H, H], b_ih [G H], b_hh [G H],
// w_out [O, H], b_out [O].
#pragma once

#include <cstdint>

#include "rtrl/array_ops.hpp"
#include "rtrl/cells/cell_step.hpp"
#include "rtrl/cells/gru.hpp"
#include "rtrl/cells/lstm.hpp"
#include "rtrl/cells/rnn.hpp"
#include "rtrl/nonfinite.hpp"
#include "rtrl/optimizer.hpp"
#include "rtrl/readout.hpp"
#include "rtrl/recurrent_layer.hpp"
#include "rtrl/row_functor.hpp"

namespace rtrl {

struct CellNetDims {
  CellKind cell = CellKind::lstm;
  Nonlinearity nonlinearity = Nonlinearity::tanh;
  index_t inputs = 0, hidden = 0, outputs = 0, batch = 1;

  RTRL_HD index_t gates() const { return cell == CellKind::lstm ? 4 : cell == CellKind::gru ? 3 : 1; }
  RTRL_HD index_t bias_cols() const { return cell == CellKind::gru ? 2 : 1; }
  RTRL_HD index_t width() const { return inputs + hidden + bias_cols(); }  // W
  RTRL_HD index_t n_theta() const { return gates() * hidden * width(); }   // Np
  // Offsets in the flat parameter vector.
  RTRL_HD index_t off_w_hh() const { return gates() * hidden * inputs; }
  RTRL_HD index_t off_b_ih() const { return off_w_hh() + gates() * hidden * hidden; }
  RTRL_HD index_t off_b_hh() const { return off_b_ih() + gates() * hidden; }
  RTRL_HD index_t off_w_out() const { return off_b_hh() + gates() * hidden; }
  RTRL_HD index_t off_b_out() const { return off_w_out() + outputs * hidden; }
  RTRL_HD index_t n_params() const { return off_b_out() + outputs; }
};

template <class T>
struct CellNetState {
  T* params;     // [n_params] flat
  T* h;          // [B, H]
  T* c;          // [B, H] (LSTM) or null
  T* P_h;        // [H, B Np]
  T* P_c;        // [H, B Np] (LSTM) or null
  T* grad;       // [n_params]
  T* opt_state;  // [state rows, n_params] or null
};

struct CellNetOptions {
  LossKind loss = LossKind::mse;
  double loss_scale = 1.0;
  bool update_each_step = false;
  OptimizerConfig optimizer;
  std::int64_t optimizer_step = 0;
  NonfinitePolicy on_nonfinite = NonfinitePolicy::raise;
};

template <class T>
struct CellNetSequence {
  index_t steps;
  const T* x;       // [T, B, I]
  const T* target;  // [T, B, O] (mse) or [T, B] (cross_entropy) or null
  T* outputs;       // [T, B, O]
  T* loss;          // [T]
};

// v[s, :] = [x_s | h_s | 1 (| 1)].   called as f(s, 0, k), k in [0, W)
template <class T>
struct LoadColumnValues {
  CellNetDims d;
  const T* x;
  const T* h;
  T* v;
  RTRL_HD void operator()(index_t s, index_t, index_t k) const {
    const index_t I = d.inputs, H = d.hidden;
    v[s * d.width() + k] = k < I ? x[s * I + k] : (k < I + H ? h[s * H + k - I] : T(1));
  }
};

// Q[g', column (s, g', k)] += v[s, k]: each weight of gate row g' acts on that row directly.
// GRU's n rows take only the h-side columns here (w_hn, b_hn sit inside r); the x side (w_in, b_in)
// is added in the sensitivity pass. Called as f(r, 0, k) for the columns q = r W + k of a block
// [q0, ...), r = s G H + g'.
//   Q: [G H, ldq] holding P's columns [q0, ...)   v: [B, W]
template <class T>
struct AddCellImmediateTerm {
  CellNetDims d;
  index_t q0;
  index_t ldq;
  const T* v;
  T* Q;
  RTRL_HD void operator()(index_t r, index_t, index_t k) const {
    const index_t GH = d.gates() * d.hidden, W = d.width(), I = d.inputs, H = d.hidden;
    const index_t s = r / GH, g = r % GH;
    const bool x_side_of_n = d.cell == CellKind::gru && g >= 2 * H && (k < I || k == I + H);
    if (!x_side_of_n) Q[g * ldq + (r * W + k - q0)] += v[s * W + k];
  }
};

// The sensitivity pass is linear in Q and the previous sensitivities with coefficients that depend
// only on (stream, unit): they are computed once per step into coef [K, B, H] so that the pass over
// the columns is a few fused multiply-adds per element.
//   LSTM (K = 6): dc = f P_c + k0 dA_f + k1 dA_i + k2 dA_g,  dh = k3 dA_o + k4 dc
//                 k0 = c_prev f', k1 = g i', k2 = i g', k3 = o' tanh(c), k4 = o tanh'(c), k5 = f
//   GRU (K = 5):  dh = k0 dA_z + k1 dA_nx + k2 dA_nh + k3 dA_r + k4 P_h
//                 k0 = (h - n) z', k1 = (1 - z) n', k2 = k1 r, k3 = k1 (W_hn h + b_hn) r', k4 = z
//   RNN (K = 1):  dh = k0 dA,  k0 = act'(a)
// (x' is the derivative of gate x with respect to its pre-activation, written with x itself.)
template <class Cell> struct CellCoefficients;

template <>
struct CellCoefficients<RnnCell> {
  static constexpr int K = 1;
  template <class T>
  RTRL_HD static void compute(const CellNetDims& d, const T* gates, const T*, const T*, const T*,
                              const T*, index_t s, index_t j, T* k, index_t stride) {
    const T h = gates[s * d.hidden + j];
    k[0] = d.nonlinearity == Nonlinearity::tanh ? T(1) - h * h : (h > T(0) ? T(1) : T(0));
    (void)stride;
  }
};

template <>
struct CellCoefficients<LstmCell> {
  static constexpr int K = 6;
  template <class T>
  RTRL_HD static void compute(const CellNetDims& d, const T* gates, const T* c_prev, const T* c_new,
                              const T*, const T*, index_t s, index_t j, T* k, index_t stride) {
    const index_t H = d.hidden, sj = s * H + j;
    const T* g = gates + s * 4 * H;
    const T i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];
    const T tc = math::tanh(c_new[sj]);
    k[0] = c_prev[sj] * f * (T(1) - f);
    k[stride] = gg * i * (T(1) - i);
    k[2 * stride] = i * (T(1) - gg * gg);
    k[3 * stride] = o * (T(1) - o) * tc;
    k[4 * stride] = o * (T(1) - tc * tc);
    k[5 * stride] = f;
  }
};

template <>
struct CellCoefficients<GruCell> {
  static constexpr int K = 5;
  template <class T>
  RTRL_HD static void compute(const CellNetDims& d, const T* gates, const T*, const T*,
                              const T* aux, const T* h_prev, index_t s, index_t j, T* k,
                              index_t stride) {
    const index_t H = d.hidden, sj = s * H + j;
    const T* g = gates + s * 3 * H;
    const T r = g[j], z = g[H + j], n = g[2 * H + j];
    const T kn = (T(1) - z) * (T(1) - n * n);
    k[0] = (h_prev[sj] - n) * z * (T(1) - z);
    k[stride] = kn;
    k[2 * stride] = kn * r;
    k[3 * stride] = kn * aux[sj] * r * (T(1) - r);
    k[4 * stride] = z;
  }
};

// Fills coef [K, B, H] for one step.   f(s, j)
template <class Cell, class T>
struct ComputeCoefficients {
  CellNetDims d;
  const T* gates;
  const T* c_prev;
  const T* c_new;
  const T* aux;
  const T* h_prev;
  T* coef;
  RTRL_HD void operator()(index_t s, index_t j) const {
    const index_t BH = d.batch * d.hidden;
    CellCoefficients<Cell>::compute(d, gates, c_prev, c_new, aux, h_prev, s, j,
                                    coef + s * d.hidden + j, BH);
  }
};

// What the sensitivity pass of one step reads.
template <class T>
struct CellSensitivityStep {
  CellNetDims d;
  index_t q0;          // first column of the block
  const T* Q;          // [G H, ldq]  W_hh P_h(t-1) + immediate terms, the block's columns
  index_t ldq;
  const T* coef;       // [K, B, H]
  const T* v;          // [B, W]  (GRU's x-side immediate term)
  const T* delta_h;    // [B, H]  dL/dh(t)
  T* P_h;              // [H, B Np]
  T* P_c;              // [H, B Np] (LSTM)
  T* G;                // [B Np]  sum_j delta_h[s, j] P_h(t)[j, q]

  RTRL_HD index_t ld() const { return d.batch * d.n_theta(); }
};

// The per-column part of the pass, given row(s, j): pointers to the Q rows of unit j's gates and to
// row j of P_h/P_c, and the coefficients of (s, j). f(row, s, j, c) with the calls for one column in
// increasing j.
template <class T>
struct CellSensitivityRow {
  const T* q[4];   // Q rows of unit j's gates, at the column of c = 0 of stream s
  T* p_h;          // row j of P_h, at column q = s Np
  T* p_c;          // row j of P_c (LSTM)
  T* g;            // G at column s Np
  T k[6];          // coefficients
  T delta;         // dL/dh(t)[s, j]
  bool first;      // j == 0
  index_t n_row;   // GRU: the first column of gate row n_j
  const T* v;      // GRU: v[s, :]
};

template <class T>
RTRL_HD CellSensitivityRow<T> sensitivity_row(const CellSensitivityStep<T>& a, int gates, int K,
                                              index_t s, index_t j) {
  CellSensitivityRow<T> r{};
  const index_t base = s * a.d.n_theta();
  for (int g = 0; g < gates; ++g) r.q[g] = a.Q + (g * a.d.hidden + j) * a.ldq + (base - a.q0);
  r.p_h = a.P_h + j * a.ld() + base;
  r.p_c = a.P_c ? a.P_c + j * a.ld() + base : nullptr;
  r.g = a.G + base;
  const T* k = a.coef + s * a.d.hidden + j;
  for (int m = 0; m < K; ++m) r.k[m] = k[m * a.d.batch * a.d.hidden];
  r.delta = a.delta_h[s * a.d.hidden + j];
  r.first = j == 0;
  r.n_row = (2 * a.d.hidden + j) * a.d.width();
  r.v = a.v + s * a.d.width();
  return r;
}

template <class T>
RTRL_HD void accumulate(const CellSensitivityRow<T>& r, index_t c, T p_h) {
  r.g[c] = (r.first ? T(0) : r.g[c]) + r.delta * p_h;
}

template <class T>
struct RnnSensitivity {
  CellSensitivityStep<T> a;
  RTRL_HD CellSensitivityRow<T> row(index_t s, index_t j) const { return sensitivity_row(a, 1, 1, s, j); }
  RTRL_HD void operator()(const CellSensitivityRow<T>& r, index_t, index_t, index_t c) const {
    const T p_h = r.k[0] * r.q[0][c];
    r.p_h[c] = p_h;
    accumulate(r, c, p_h);
  }
};

template <class T>
struct LstmSensitivity {
  CellSensitivityStep<T> a;
  RTRL_HD CellSensitivityRow<T> row(index_t s, index_t j) const { return sensitivity_row(a, 4, 6, s, j); }
  RTRL_HD void operator()(const CellSensitivityRow<T>& r, index_t, index_t, index_t c) const {
    const T dc = r.k[5] * r.p_c[c] + r.k[0] * r.q[1][c] + r.k[1] * r.q[0][c] + r.k[2] * r.q[2][c];
    const T p_h = r.k[3] * r.q[3][c] + r.k[4] * dc;
    r.p_c[c] = dc;
    r.p_h[c] = p_h;
    accumulate(r, c, p_h);
  }
};

template <class T>
struct GruSensitivity {
  CellSensitivityStep<T> a;
  RTRL_HD CellSensitivityRow<T> row(index_t s, index_t j) const { return sensitivity_row(a, 3, 5, s, j); }
  RTRL_HD void operator()(const CellSensitivityRow<T>& r, index_t, index_t, index_t c) const {
    const index_t I = a.d.inputs, H = a.d.hidden, W = a.d.width();
    const index_t kx = c - r.n_row;  // column within gate row n_j, if c is in that row
    const bool x_side = kx >= 0 && kx < W && (kx < I || kx == I + H);
    const T v_k = r.v[x_side ? kx : 0];  // an in-bounds load on every lane
    const T p_h = r.k[0] * r.q[1][c] + r.k[1] * (x_side ? v_k : T(0)) + r.k[2] * r.q[2][c] +
                  r.k[3] * r.q[0][c] + r.k[4] * r.p_h[c];
    r.p_h[c] = p_h;
    accumulate(r, c, p_h);
  }
};

// Moves the packed theta gradient [G H, W] into the flat gradient's w_ih, w_hh, b_ih, b_hh
// (= or +=); for RNN and LSTM the single bias column is reported for both biases.   f(g', k)
template <class T>
struct ScatterThetaGradient {
  CellNetDims d;
  bool accumulate;
  const T* packed;
  T* grad;
  RTRL_HD void put(index_t at, T value) const { grad[at] = accumulate ? grad[at] + value : value; }
  RTRL_HD void operator()(index_t g, index_t k) const {
    const index_t I = d.inputs, H = d.hidden;
    const T value = packed[g * d.width() + k];
    if (k < I) put(g * I + k, value);
    else if (k < I + H) put(d.off_w_hh() + g * H + (k - I), value);
    else if (k == I + H) {
      put(d.off_b_ih() + g, value);
      if (d.cell != CellKind::gru) put(d.off_b_hh() + g, value);
    } else {
      put(d.off_b_hh() + g, value);
    }
  }
};

}  // namespace rtrl
