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

#include "rtrl/cells/cell_step.hpp"
#include "rtrl/optimizer.hpp"
#include "rtrl/readout.hpp"
#include "rtrl/recurrent_layer.hpp"

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
// is added in the sensitivity pass. Called as f(r, 0, k) for r = s G H + g' in the block [r0, ...).
//   Q: [G H, ldq]   v: [B, W]
template <class T>
struct AddCellImmediateTerm {
  CellNetDims d;
  index_t r0;
  index_t ldq;
  const T* v;
  T* Q;
  RTRL_HD void operator()(index_t r, index_t, index_t k) const {
    const index_t GH = d.gates() * d.hidden, W = d.width(), I = d.inputs, H = d.hidden;
    const index_t s = r / GH, g = r % GH;
    const bool x_side_of_n = d.cell == CellKind::gru && g >= 2 * H && (k < I || k == I + H);
    if (!x_side_of_n) Q[g * ldq + (r - r0) * W + k] += v[s * W + k];
  }
};

// What the sensitivity pass of one step reads; per-stream arrays are [B, H] unless noted.
template <class T>
struct CellSensitivityStep {
  CellNetDims d;
  index_t q0;          // first column of the block
  const T* Q;          // [G H, ldq]  W_hh P_h(t-1) + immediate terms, the block's columns
  index_t ldq;
  const T* gates;      // [B, G H]  gate activations (RNN: h(t))
  const T* c_prev;     // LSTM
  const T* c_new;      // LSTM
  const T* aux;        // GRU: W_hn h_prev + b_hn
  const T* h_prev;     // GRU
  const T* v;          // [B, W]  (GRU's x-side immediate term)
  const T* delta_h;    // dL/dh(t)
  T* P_h;              // [H, B Np]
  T* P_c;              // [H, B Np] (LSTM)
  T* G;                // [B Np]  sum_j delta_h[s, j] P_h(t)[j, q]

  RTRL_HD index_t ld() const { return d.batch * d.n_theta(); }
  RTRL_HD T q(index_t gate, index_t j, index_t col) const {
    return Q[(gate * d.hidden + j) * ldq + col];
  }
  RTRL_HD void accumulate(index_t s, index_t j, index_t qcol, T p_h) const {
    G[qcol] = (j == 0 ? T(0) : G[qcol]) + delta_h[s * d.hidden + j] * p_h;
  }
};

// P_h(t)[j, q] = act'(a_j) dA_j.   f(s, j, c) with the calls for one column in increasing j.
template <class T>
struct RnnSensitivity {
  CellSensitivityStep<T> a;
  RTRL_HD void operator()(index_t s, index_t j, index_t c) const {
    const index_t qcol = s * a.d.n_theta() + c;
    const T h = a.gates[s * a.d.hidden + j];
    const T slope = a.d.nonlinearity == Nonlinearity::tanh ? T(1) - h * h : (h > T(0) ? T(1) : T(0));
    const T p_h = slope * a.q(0, j, qcol - a.q0);
    a.P_h[j * a.ld() + qcol] = p_h;
    a.accumulate(s, j, qcol, p_h);
  }
};

// dc = f P_c + c_prev f' dA_f + g i' dA_i + i g' dA_g;  dh = o' dA_o tanh(c) + o tanh'(c) dc
template <class T>
struct LstmSensitivity {
  CellSensitivityStep<T> a;
  RTRL_HD void operator()(index_t s, index_t j, index_t c) const {
    const index_t H = a.d.hidden, qcol = s * a.d.n_theta() + c, col = qcol - a.q0;
    const T* g = a.gates + s * 4 * H;
    const T i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];
    const index_t sj = s * H + j;
    const T tc = math::tanh(a.c_new[sj]);
    const index_t at = j * a.ld() + qcol;
    const T dc = f * a.P_c[at] + a.c_prev[sj] * f * (T(1) - f) * a.q(1, j, col) +
                 gg * i * (T(1) - i) * a.q(0, j, col) + i * (T(1) - gg * gg) * a.q(2, j, col);
    const T p_h = o * (T(1) - o) * a.q(3, j, col) * tc + o * (T(1) - tc * tc) * dc;
    a.P_c[at] = dc;
    a.P_h[at] = p_h;
    a.accumulate(s, j, qcol, p_h);
  }
};

// h' = (1 - z) n + z h:  dh' = (h - n) z' dA_z + (1 - z) dn + z P_h,
// dn = n' (dA_nx + r dA_nh + (W_hn h + b_hn) r' dA_r)
template <class T>
struct GruSensitivity {
  CellSensitivityStep<T> a;
  RTRL_HD void operator()(index_t s, index_t j, index_t c) const {
    const index_t H = a.d.hidden, I = a.d.inputs, W = a.d.width();
    const index_t qcol = s * a.d.n_theta() + c, col = qcol - a.q0;
    const T* g = a.gates + s * 3 * H;
    const T r = g[j], z = g[H + j], n = g[2 * H + j];
    const index_t sj = s * H + j;
    const index_t k = c - (2 * H + j) * W;  // column within gate row n_j, if c is in that row
    const bool x_side = k >= 0 && k < W && (k < I || k == I + H);
    const T v_k = a.v[s * W + (x_side ? k : 0)];  // an in-bounds load on every lane
    const T dr = r * (T(1) - r) * a.q(0, j, col);
    const T dz = z * (T(1) - z) * a.q(1, j, col);
    const T dn = (T(1) - n * n) * ((x_side ? v_k : T(0)) + r * a.q(2, j, col) + a.aux[sj] * dr);
    const index_t at = j * a.ld() + qcol;
    const T p_h = (a.h_prev[sj] - n) * dz + (T(1) - z) * dn + z * a.P_h[at];
    a.P_h[at] = p_h;
    a.accumulate(s, j, qcol, p_h);
  }
};

// out[c] = sum_s G[s N + c], in order of s.   f(0, s, c)
template <class T>
struct SumOverStreams {
  index_t n;
  const T* G;
  T* out;
  RTRL_HD void operator()(index_t, index_t s, index_t c) const {
    out[c] = (s == 0 ? T(0) : out[c]) + G[s * n + c];
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
