// Exact RTRL for a stack of recurrent layers (PyTorch's RNN, LSTM, GRU; the leaky RNN) with a
// linear readout on the top layer (DESIGN §3.3, §10): sizes, buffers and the per-element functors.
//
// Layer l (of L) sees I_l inputs (I_0 = I, then H) and has H units. Its recurrent parameters theta_l
// have one row per gate row g' in [0, G H), each row W_l = I_l + H + nb columns
// [w_ih row | w_hh row | bias_ih (| bias_hh)]: nb = 1 for RNN and LSTM, whose two biases have the
// same sensitivity (one is kept, both are reported), nb = 2 for GRU, whose b_hn sits inside r.
// N_l = G H W_l, N_<l = N_0 + ... + N_{l-1}.
//
// Layer l's sensitivities cover the parameters of layers <= l (no other parameter reaches it):
// P_h^l [H, B N_<=l] (and P_c^l for LSTM), its columns grouped by layer, then stream:
//   column q = B N_<m + s N_m + c  for parameter c of layer m <= l, stream s,
// so that the columns of the layers below l are the same in P^l and P^{l-1} and one product
// W_ih^l P_h^{l-1}(t) + W_hh^l P_h^l(t-1) covers them. With one layer this is P_h [H, B N_0].
// A process of column-sharded RTRL (DESIGN §12) carries the gate rows [g0, g0 + n_g) of every layer:
// C_l = n_g W_l columns of layer l per stream, in place of N_l (c counted from g0 W_l), and
// C_<l in place of N_<l.
// v_l = [h^{l-1}_t | h^l_{t-1} | 1 (| 1)] (h^{-1} = x) is the value each own column multiplies.
//
// The flat parameter vector holds, layer by layer, w_ih [G H, I_l], w_hh [G H, H], b_ih [G H],
// b_hh [G H]; then w_out [O, H], b_out [O].
#pragma once

#include <array>
#include <cstdint>

#include "rtrl/array_ops.hpp"
#include "rtrl/cells/cell_step.hpp"
#include "rtrl/cells/elstm.hpp"
#include "rtrl/cells/gru.hpp"
#include "rtrl/cells/lstm.hpp"
#include "rtrl/cells/rnn.hpp"
#include "rtrl/nonfinite.hpp"
#include "rtrl/optimizer.hpp"
#include "rtrl/readout.hpp"
#include "rtrl/recurrent_layer.hpp"
#include "rtrl/row_functor.hpp"

namespace rtrl {

RTRL_HD constexpr index_t cell_gates(CellKind cell) {
  return cell == CellKind::lstm  ? LstmCell::kGates
         : cell == CellKind::gru ? GruCell::kGates
         : cell == CellKind::elstm ? ElstmCell::kGates
                                   : RnnCell::kGates;
}
RTRL_HD constexpr index_t cell_bias_columns(CellKind cell) {
  return cell == CellKind::gru ? GruCell::kBiasColumns : RnnCell::kBiasColumns;
}

// One layer of the stack, as the per-step functors see it. Offsets are into the flat parameter
// vector (params_at: this layer's w_ih) and into the parameter columns (theta_at: N_<l).
struct CellLayerDims {
  CellKind cell = CellKind::lstm;
  Nonlinearity nonlinearity = Nonlinearity::tanh;
  double alpha = 1.0;
  index_t inputs = 0, hidden = 0, batch = 1;  // I_l, H, B
  index_t params_at = 0, theta_at = 0;
  // The gate rows whose sensitivities this process carries (column-sharded RTRL):
  // [row0, row0 + carried_rows()), rows < 0: all G H; carried_at: C_<l.
  index_t row0 = 0, rows = -1, carried_at = 0;

  RTRL_HD index_t gates() const { return cell_gates(cell); }
  RTRL_HD index_t bias_cols() const { return cell_bias_columns(cell); }
  RTRL_HD bool elementwise() const { return cell == CellKind::elstm; }  // w_hh [G H], one per row
  RTRL_HD index_t recurrent_cols() const { return elementwise() ? 1 : hidden; }  // w_hh's per row
  RTRL_HD index_t width() const { return inputs + recurrent_cols() + bias_cols(); }  // W_l
  RTRL_HD index_t n_theta() const { return gates() * hidden * width(); }   // N_l
  RTRL_HD index_t off_w_hh() const { return params_at + gates() * hidden * inputs; }
  RTRL_HD index_t off_b_ih() const { return off_w_hh() + gates() * hidden * recurrent_cols(); }
  RTRL_HD index_t off_b_hh() const { return off_b_ih() + gates() * hidden; }
  RTRL_HD index_t n_params() const { return gates() * hidden * (inputs + recurrent_cols() + 2); }
  RTRL_HD index_t carried_rows() const { return rows < 0 ? gates() * hidden : rows; }  // n_g
  RTRL_HD index_t n_carried() const { return carried_rows() * width(); }                // C_l
};

struct CellNetDims {
  CellKind cell = CellKind::lstm;
  Nonlinearity nonlinearity = Nonlinearity::tanh;
  index_t inputs = 0, hidden = 0, outputs = 0, batch = 1;
  index_t layers = 1;  // L
  double alpha = 1.0;  // RNN: the leaky cell's factor
  // Column-sharded RTRL: the gate rows of every layer this process carries (shard_rows < 0: all).
  index_t shard_row0 = 0, shard_rows = -1;

  RTRL_HD index_t gates() const { return cell_gates(cell); }
  RTRL_HD index_t bias_cols() const { return cell_bias_columns(cell); }
  RTRL_HD CellLayerDims layer(index_t l) const {
    const index_t G = gates(), H = hidden, R = cell == CellKind::elstm ? 1 : H;  // w_hh's per row
    CellLayerDims d{cell, nonlinearity, alpha, l == 0 ? inputs : H, H, batch, 0, 0};
    d.row0 = shard_row0;
    d.rows = shard_rows;
    if (l > 0) {
      const index_t n_g = d.carried_rows();
      d.params_at = G * H * (inputs + R + 2) + (l - 1) * G * H * (H + R + 2);
      d.theta_at = G * H * (inputs + R + bias_cols()) + (l - 1) * G * H * (H + R + bias_cols());
      d.carried_at = n_g * (inputs + R + bias_cols()) + (l - 1) * n_g * (H + R + bias_cols());
    }
    return d;
  }
  RTRL_HD index_t n_theta() const { return layer(layers).theta_at; }  // N_<L, all layers
  RTRL_HD index_t theta_through(index_t l) const { return layer(l + 1).theta_at; }  // N_<=l
  RTRL_HD index_t n_carried() const { return layer(layers).carried_at; }  // C_<L
  RTRL_HD index_t carried_through(index_t l) const { return layer(l + 1).carried_at; }  // C_<=l
  RTRL_HD index_t width() const { return layer(0).width(); }
  RTRL_HD index_t off_w_out() const { return layer(layers).params_at; }
  RTRL_HD index_t off_b_out() const { return off_w_out() + outputs * hidden; }
  RTRL_HD index_t n_params() const { return off_b_out() + outputs; }
  // One-layer offsets of w_hh, b_ih, b_hh (layer 0).
  RTRL_HD index_t off_w_hh() const { return layer(0).off_w_hh(); }
  RTRL_HD index_t off_b_ih() const { return layer(0).off_b_ih(); }
  RTRL_HD index_t off_b_hh() const { return layer(0).off_b_hh(); }
};

template <class T>
struct CellNetState {
  T* params;         // [n_params] flat
  T* h;              // [L, B, H]
  T* c;              // [L, B, H] (LSTM) or null
  T* const* P_h;     // L pointers, P_h[l]: [H, B N_<=l]
  T* const* P_c;     // L pointers (LSTM) or null
  T* grad;           // [n_params]
  T* opt_state;      // [state rows, n_params] or null
};

template <class T>
struct CellNetBpttState {
  const T* params;  // [n_params] flat
  T* h;             // [L, B, H]  carried into and out of the chunk
  T* c;             // [L, B, H] (LSTM) or null
  T* grad;          // [n_params]  the chunk's gradient is added here
};

struct CellNetOptions {
  LossKind loss = LossKind::mse;
  double loss_scale = 1.0;
  bool update_each_step = false;
  OptimizerConfig optimizer;
  std::int64_t optimizer_step = 0;
  NonfinitePolicy on_nonfinite = NonfinitePolicy::raise;
  GradientCombiner combine_gradient;  // empty: one process
};

template <class T>
struct CellNetSequence {
  index_t steps;
  const T* x;       // [T, B, I]
  const T* target;  // [T, B, O] (mse) or [T, B] (cross_entropy) or null
  T* outputs;       // [T, B, O]
  T* loss;          // [T]
};

// v[s, :] = [x_s | h_s | 1 (| 1)] (eLSTM: [x_s | 0 | 1], its w_hh column's value h_s[u] depends on
// the row's unit u and is read from h).   called as f(s, 0, k), k in [0, W)
//   x: [B, I_l]   h: [B, H]   v: [B, W_l]
template <class T>
struct LoadColumnValues {
  CellLayerDims d;
  const T* x;
  const T* h;
  T* v;
  RTRL_HD void operator()(index_t s, index_t, index_t k) const {
    const index_t I = d.inputs, H = d.hidden, R = d.recurrent_cols();
    v[s * d.width() + k] = k < I ? x[s * I + k] : (k < I + R ? (d.elementwise() ? T(0) : h[s * H + k - I]) : T(1));
  }
};

// Q[g', column (s, g', k)] += v[s, k]: each weight of gate row g' acts on that row directly.
// GRU's n rows take only the h-side columns here (w_hn, b_hn sit inside r); the x side (w_in, b_in)
// is added in the sensitivity pass. Called as f(r, 0, k) for the columns r W + k of the layer's
// own columns, counted from their first; Q holds those from q0 on, r = s n_g + g' - g0 (all rows
// unsharded: r = s G H + g'). The eLSTM's w_hh column of row g' takes h[s, g' mod H].
//   Q: [G H, ldq]   v: [B, W]   h: [B, H]
// What AddCellImmediateTerm reads once per row r = s n_g + g' - g0 (the division stays out of the columns).
template <class T>
struct ImmediateTermRow {
  index_t at;     // Q's element of column (r, 0), less q0
  const T* v;     // v[s, :]
  T recurrent;    // the eLSTM's w_hh column: h[s, g' mod H]
  bool gru_n;     // a GRU n row: its x side is added in the pass
};

template <class T>
struct AddCellImmediateTerm {
  CellLayerDims d;
  index_t q0;
  index_t ldq;
  const T* v;
  T* Q;
  const T* h;
  RTRL_HD ImmediateTermRow<T> row(index_t r, index_t) const {
    const index_t n_g = d.carried_rows(), W = d.width(), H = d.hidden;
    const index_t s = r / n_g, g = d.row0 + r % n_g;
    return {g * ldq + r * W - q0, v + s * W, d.elementwise() ? h[s * H + g % H] : T(0),
            d.cell == CellKind::gru && g >= 2 * H};
  }
  RTRL_HD void operator()(const ImmediateTermRow<T>& row, index_t, index_t, index_t k) const {
    const index_t I = d.inputs;
    if (row.gru_n && (k < I || k == I + d.hidden)) return;
    Q[row.at + k] += d.elementwise() && k == I ? row.recurrent : row.v[k];
  }
};

// The sensitivity pass is linear in Q and the previous sensitivities with coefficients that depend
// only on (stream, unit): each cell computes them once per step into coef [K, B, H] (its
// coefficients()), so that the pass over the columns is a few fused multiply-adds per element.
template <class Cell, class T>
struct ComputeCoefficients {
  CellCoefficientArgs<T> a;
  T* coef;
  RTRL_HD void operator()(index_t s, index_t j) const {
    Cell::coefficients(a, s, j, coef + s * a.H + j, a.B * a.H);
  }
};

// What the sensitivity pass over one group of columns reads: the columns of one layer m's
// parameters in layer l's sensitivities, counted from their first (pointers are offset to it).
template <class T>
struct CellSensitivityStep {
  CellLayerDims d;     // layer l (whose coefficients apply); inputs and width are layer m's
  index_t per_stream;  // C_m (N_m unsharded)
  index_t ld;          // B C_<=l, the row stride of P_h^l
  index_t q0;          // the column of Q's first, counted like the group's
  const T* Q;          // [rows, ldq]  W_hh P_h(t-1) (+ W_ih P_h^{l-1}(t)) + immediate terms
  index_t ldq;
  const T* coef;       // [K, B, H]
  const T* v;          // [B, W]  (GRU's x-side immediate term)
  const T* delta_h;    // [B, H]  dL/dh(t), for the top layer
  T* P_h;              // row 0 of P_h^l at the group's first column
  T* P_c;              // ... of P_c^l (LSTM)
  T* G;                // [B per_stream] the contraction sum_j delta_h[s, j] P_h(t)[j, .], or null
};

template <class T>
RTRL_HD CellSensitivityRow<T> sensitivity_row(const CellSensitivityStep<T>& a, int rows, int K,
                                              index_t s, index_t j) {
  CellSensitivityRow<T> r{};
  const index_t H = a.d.hidden, base = s * a.per_stream;
  for (int g = 0; g < rows; ++g) r.q[g] = a.Q + (g * H + j) * a.ldq + (base - a.q0);
  r.p_h = a.P_h + j * a.ld + base;
  r.p_c = a.P_c ? a.P_c + j * a.ld + base : nullptr;
  r.g = a.G ? a.G + base : nullptr;
  const T* k = a.coef + s * H + j;
  for (int m = 0; m < K; ++m) r.k[m] = k[m * a.d.batch * H];
  r.delta = a.delta_h ? a.delta_h[s * H + j] : T(0);
  r.first = j == 0;
  r.n_row = (2 * H + j - a.d.row0) * a.d.width();
  r.v = a.v ? a.v + s * a.d.width() : nullptr;
  r.inputs = a.d.inputs;
  r.width = a.d.width();
  return r;
}

// The pass of one cell over a group of columns, f(row, s, j, c): kContract accumulates the top
// layer's contraction; kLower: columns of a layer below (GRU reads the n gate's input side from the
// product); kLeaky: the leaky RNN's own-memory term.
template <class Cell, class T, bool kContract, bool kLower, bool kLeaky>
struct CellSensitivity {
  CellSensitivityStep<T> a;
  static constexpr int kRows = Cell::kGates + (kLower && Cell::kSeparateHiddenGrad ? 1 : 0);
  RTRL_HD CellSensitivityRow<T> row(index_t s, index_t j) const {
    return sensitivity_row(a, kRows, Cell::kCoefficients, s, j);
  }
  RTRL_HD void operator()(const CellSensitivityRow<T>& r, index_t, index_t, index_t c) const {
    const T p_h = Cell::template propagate<kLower, kLeaky>(r, c);
    if (kContract) r.g[c] = (r.first ? T(0) : r.g[c]) + r.delta * p_h;
  }
};

// The left operand of the product over the columns of the layers below layer l:
// [W_ih^l | W_hh^l] (rows G H, columns I_l + H); for GRU the n rows are split into an h side
// [0 | W_hn] (rows 2H..3H) and an input side [W_in | 0] (rows 3H..4H), which r multiplies apart.
//   out: [rows, I_l + H]   f(row, k)
template <class T>
struct StackedOperand {
  CellLayerDims d;
  const T* params;
  T* out;
  RTRL_HD void operator()(index_t r, index_t k) const {
    const index_t I = d.inputs, H = d.hidden, GH = d.gates() * H, K = I + H;
    const bool gru = d.cell == CellKind::gru;
    const index_t g = r < GH ? r : r - H;  // the weight row (GRU's extra rows: the n rows again)
    const bool input_side = k < I;
    T value;
    if (input_side) value = params[d.params_at + g * I + k];
    else if (d.elementwise()) value = k - I == g % H ? params[d.off_w_hh() + g] : T(0);  // diag(w_hh)
    else value = params[d.off_w_hh() + g * H + (k - I)];
    if (gru && r >= 2 * H && r < GH && input_side) value = T(0);   // n's h side
    if (gru && r >= GH && !input_side) value = T(0);               // n's input side
    out[r * K + k] = value;
  }
};

// Where the columns of one layer's theta rows [G H, W] sit in the flat parameters: w_ih, w_hh, b_ih
// and b_hh, each `cols` columns from theta's column `column` (RNN and LSTM keep one bias column for
// both biases), gate row g' at at + g' cols.
struct ThetaBlock {
  index_t column, at, cols;
};

inline std::array<ThetaBlock, 4> theta_blocks(const CellLayerDims& d) {
  const index_t I = d.inputs, R = d.recurrent_cols();
  const index_t hh_column = d.cell == CellKind::gru ? I + R + 1 : I + R;
  return {{{0, d.params_at, I}, {I, d.off_w_hh(), R}, {I + R, d.off_b_ih(), 1}, {hh_column, d.off_b_hh(), 1}}};
}

// Moves the packed theta gradient of one layer [G H, W] into the flat gradient's w_ih, w_hh, b_ih and
// b_hh (theta_blocks). Each block is one strided copy (contiguous runs the CPU vectorises, an element
// per thread on CUDA). A shard's packed gradient holds its gate rows [g0, g0 + n_g) only; the other
// rows' gradient is set to zero (the other processes').
//   packed: [n_g, W]   grad: the flat gradient
template <class Ctx, class T>
void scatter_theta_gradient(Ctx& ctx, const CellLayerDims& d, const T* packed, T* grad) {
  const index_t W = d.width(), g0 = d.row0, n_g = d.carried_rows();
  const index_t after = d.gates() * d.hidden - g0 - n_g;
  for (const ThetaBlock& b : theta_blocks(d)) {
    T* out = grad + b.at;
    ctx.for_each_2d(n_g, b.cols, CopyRows<T>{packed + b.column, W, out + g0 * b.cols, b.cols});
    if (g0 > 0) ctx.for_each(g0 * b.cols, Fill<T>{T(0), out});
    if (after > 0) ctx.for_each(after * b.cols, Fill<T>{T(0), out + (g0 + n_g) * b.cols});
  }
}

}  // namespace rtrl
