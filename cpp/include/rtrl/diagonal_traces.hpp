// Unit-diagonal traces (DESIGN §9): SnAp-1 (Menick et al. 2021) and e-prop (Bellec et al. 2020) keep,
// per stream, only the sensitivities of each unit's state to the parameters of the rows that unit
// owns, J^k_t = D^kk_t J^k_{t-1} + I^k_t. SnAp-1 takes D^kk whole (the unit's own recurrent weight
// included); e-prop takes only the state's internal memory (the path through W_hh dropped).
//
// A trace has the layout of the parameters it covers, one copy per stream:
//   fully recurrent network: J [B, n, L], J[s, k, j] = d y_k / d w_kj;
//   a layer of RecurrentNet: J_h (and J_c for LSTM) [B, G H, W_l], J[s, g', c] = d h_u / d theta[g', c]
//   with u = g' mod H the unit that owns gate row g' (theta's columns as in cell_rtrl.hpp).
// Both passes below run over the parameter entries (rows and columns) and loop over the streams in
// order inside, so that the stream sum of the gradient is the same for any thread count.
#pragma once

#include "rtrl/cell_rtrl.hpp"
#include "rtrl/fully_recurrent.hpp"
#include "rtrl/item_cost.hpp"
#include "rtrl/row_functor.hpp"
#include "rtrl/stream_groups.hpp"

namespace rtrl {

enum class TraceRule : int { snap1 = 0, eprop = 1 };

// The fully recurrent network: for unit k and column j of z,
//   J(t+1)[s, k, j] = f'_k (w_kk J(t)[s, k, j] + z_j)  (SnAp-1; e-prop: f'_k z_j), zeroed when forced,
//   G[k, j] = sum_s (-scale e_k) J(t+1)[s, k, j] (before zeroing), the step's gradient.
// Called as f(k, j).   W: [n, L]   z: [B, L]   slope, error, keep: [B, n]   J: [B, n, L]   G: [n, L]
template <class T>
struct FullyRecurrentTraceStep {
  static constexpr index_t kItemCost = 2;  // a loop over the streams
  FullyRecurrentDims d;
  bool recurrent;  // SnAp-1: D^kk = f'_k w_kk; e-prop: the unit has no own memory
  T error_scale;   // -scale: dL/dy = -scale e
  const T* W;
  const T* z;
  const T* slope;
  const T* error;
  const T* keep;
  T* J;
  T* G;
  RTRL_HD void operator()(index_t k, index_t j) const {
    const index_t n = d.units, L = d.width();
    const T w_kk = recurrent ? W[k * L + d.recurrent_offset() + k] : T(0);
    T g = T(0);
    for (index_t s = 0; s < d.batch; ++s) {
      const index_t sk = s * n + k, at = sk * L + j;
      const T v = slope[sk] * (w_kk * J[at] + z[s * L + j]);
      J[at] = keep[sk] != T(0) ? v : T(0);
      g += error_scale * error[sk] * v;
    }
    G[k * L + j] = g;
  }
};

// The rows of a cell's sensitivity pass (CellSensitivityRow::q) as the traces use them: the gates'
// pre-activations and, for a cell with a separate hidden side (GRU), the n gate's input side last.
template <class Cell>
struct TraceRows {
  static constexpr int kCount = Cell::kGates + (Cell::kSeparateHiddenGrad ? 1 : 0);
  // The row that gate x's input-side pre-activation (W_ih x + b_ih) enters.
  RTRL_HD static int input_side(int x) {
    return Cell::kSeparateHiddenGrad && x == Cell::kGates - 1 ? Cell::kGates : x;
  }
};

// One layer's traces moved on one step, and their contraction with the layer's dL/dh. For gate row
// g' = g H + u and column c, each pre-activation row x of unit u sees
//   dA_x = w_hh[x H + u, u] J_h(t-1)[s, g', c] (SnAp-1; e-prop: 0) + [x = row of (g', c)] v[s, c]
// and the cell's own pass (Cell::propagate, the rows below a layer's form) gives J_h(t) (and J_c(t))
// from them, its coefficients and J(t-1); G[g', c] = sum_s delta[s, u] J_h(t)[s, g', c]. The pass
// is linear: row(g', s) takes, from the cell's pass on unit changes, unit u's own 2 x 2 block over
// (J_h, J_c) and the immediate coefficients of the row's gate and of its input side (the GRU's n
// gate's w_in, b_in), so that the columns are a few fused multiply-adds. The eLSTM's w_hh [G H] is
// its diagonal, and its w_hh column takes h_prev[s, u]: there SnAp-1 is exact RTRL.
template <class T>
struct TraceCoefficients {
  T m00, m01, m10, m11;  // (J_h, J_c)(t) from (J_h, J_c)(t-1)
  T a_h, a_c;            // ... from the gate row's immediate term
  T x_h, x_c;            // ... from the input side's (the GRU's n gate; else the gate's)
  T h_own;               // the eLSTM's w_hh column value
  T delta;
};

// Row g' of kStreams consecutive streams s0 + i: their traces lie one layer's traces apart (stride),
// their column values one row of v apart. A column then adds the streams' terms to G[g', c] in a
// register, in stream order, and stores it once: the same sums as one stream at a time, with a
// kStreams-th of G's loads and stores.
template <class T, int kStreams>
struct TraceRow {
  T* j_h;           // J_h[s0, g', :]
  T* j_c;           // J_c[s0, g', :] (LSTM)
  T* g;             // G[g', :]
  const T* v;       // v[s0, :]
  index_t stride;   // G H W
  index_t width;    // W
  TraceCoefficients<T> stream[kStreams];
  bool first;       // s0 = 0: G[g', :] starts from zero
};

// Called through ctx.for_each_serial_k over the columns q = g' W + c with the groups of kStreams
// streams from first_stream on as depth (group k: streams first_stream + k kStreams + i).
//   w_hh: [G H, H] (eLSTM [G H])   coef: [Cell::kCoefficients, B, H]   v: [B, W]   h_prev, delta: [B, H]
//   J_h, J_c: [B, G H, W]   G: [G H, W]
template <class Cell, class T, bool kLeaky, int kStreams>
struct CellTraceStep {
  static constexpr index_t kItemCost = kStreams;  // a column moves kStreams streams
  CellLayerDims d;
  bool recurrent;
  const T* w_hh;
  const T* coef;
  const T* v;
  const T* h_prev;
  const T* delta;
  T* J_h;
  T* J_c;
  T* G;
  index_t first_stream;
  static constexpr int kRows = TraceRows<Cell>::kCount;

  // The cell's pass on q (one value per row) and previous sensitivities (p_h, p_c).
  RTRL_HD static void response(CellSensitivityRow<T>& row, const T* q_in, T p_h, T p_c, T& out_h, T& out_c) {
    T q[kRows];
    for (int x = 0; x < kRows; ++x) {
      q[x] = q_in[x];
      row.q[x] = q + x;
    }
    row.p_h = &p_h;
    row.p_c = &p_c;
    out_h = Cell::template propagate<true, kLeaky>(row, 0);
    out_c = p_c;
  }

  RTRL_HD TraceCoefficients<T> coefficients(index_t r, index_t s) const {
    const index_t H = d.hidden, u = r % H;
    const int gate = int(r / H);
    CellSensitivityRow<T> cell{};
    for (int m = 0; m < Cell::kCoefficients; ++m) cell.k[m] = coef[(m * d.batch + s) * H + u];
    T q[kRows];
    for (int x = 0; x < kRows; ++x) {
      const index_t w = Cell::kElementwiseRecurrence ? x * H + u : (x * H + u) * H + u;
      q[x] = recurrent && x < Cell::kGates ? w_hh[w] : T(0);
    }
    TraceCoefficients<T> t{};
    response(cell, q, T(1), T(0), t.m00, t.m10);
    for (int x = 0; x < kRows; ++x) q[x] = T(0);
    if (Cell::kHasCellState) response(cell, q, T(0), T(1), t.m01, t.m11);
    q[gate] = T(1);
    response(cell, q, T(0), T(0), t.a_h, t.a_c);
    q[gate] = T(0);
    q[TraceRows<Cell>::input_side(gate)] = T(1);
    response(cell, q, T(0), T(0), t.x_h, t.x_c);
    t.h_own = Cell::kElementwiseRecurrence ? h_prev[s * H + u] : T(0);
    t.delta = delta[s * H + u];
    return t;
  }

  RTRL_HD TraceRow<T, kStreams> row(index_t r, index_t group) const {
    const index_t W = d.width(), s0 = first_stream + group * kStreams, at = (s0 * d.gates() * d.hidden + r) * W;
    TraceRow<T, kStreams> t{};
    for (int i = 0; i < kStreams; ++i) t.stream[i] = coefficients(r, s0 + i);
    t.j_h = J_h + at;
    t.j_c = J_c ? J_c + at : nullptr;
    t.g = G + r * W;
    t.v = v + s0 * W;
    t.stride = d.n_theta();
    t.width = W;
    t.first = s0 == 0;
    return t;
  }

  RTRL_HD void operator()(const TraceRow<T, kStreams>& t, index_t, index_t, index_t c) const {
    const index_t I = d.inputs;
    const bool input_column = c < I || c == I + d.recurrent_cols();
    T g = t.first ? T(0) : t.g[c];
    for (int i = 0; i < kStreams; ++i) {
      const TraceCoefficients<T>& k = t.stream[i];
      const T value = Cell::kElementwiseRecurrence && c == I ? k.h_own : t.v[i * t.width + c];
      T* j_h = t.j_h + i * t.stride;
      const T h = j_h[c];
      if (Cell::kHasCellState) {
        T* j_c = t.j_c + i * t.stride;
        const T cs = j_c[c];
        const T h_new = math::fma((input_column ? k.x_h : k.a_h), value, math::fma(k.m00, h, k.m01 * cs));
        j_c[c] = math::fma((input_column ? k.x_c : k.a_c), value, math::fma(k.m10, h, k.m11 * cs));
        j_h[c] = h_new;
        g = math::fma(k.delta, h_new, g);
      } else {
        const T h_new = math::fma(k.m00, h, (input_column ? k.x_h : k.a_h) * value);
        j_h[c] = h_new;
        g = math::fma(k.delta, h_new, g);
      }
    }
    t.g[c] = g;
  }
};

// Moves one layer's traces on a step for all B streams: groups of kTraceStreams streams, then the
// streams left one at a time (the same sums in the same stream order either way). Four streams at a
// time took a sixth off SnAp-1's step on an rnn layer and a quarter on a GRU (H = 256, B = 16); a
// cell with a cell state streams two traces per stream and gained nothing (LSTM, H = 64 and 256).
template <class Cell, bool kLeaky, class Ctx, class T>
void move_cell_traces(Ctx& ctx, const CellLayerDims& dl, bool recurrent, const T* w_hh, const T* coef,
                      const T* v, const T* h_prev, const T* delta, T* J_h, T* J_c, T* G) {
  constexpr int kTraceStreams = Cell::kHasCellState ? 1 : 4;
  const index_t rows = dl.gates() * dl.hidden, W = dl.width();
  in_stream_groups<kTraceStreams>(dl.batch, [&](auto streams, index_t first, index_t groups) {
    ctx.for_each_serial_k(0, rows * W, W, groups,
                          CellTraceStep<Cell, T, kLeaky, streams()>{dl, recurrent, w_hh, coef, v, h_prev, delta,
                                                                    J_h, J_c, G, first});
  });
}

// The step's error of a layer below, by back-propagating the layer above's through the current step
// only (spatial backprop): D[s, x H + u] = delta_above[s, u] dh'_u / dA_x, A_x gate x's input-side
// pre-activation, so that delta = D W_ih (of the layer above). The derivative is the cell's own pass
// on a unit change of that row. Called as f(s, u).   coef: [K, B, H]   delta_above: [B, H]   D: [B, G H]
template <class Cell, class T, bool kLeaky>
struct InputSideError {
  index_t H, B;
  const T* coef;
  const T* delta_above;
  T* D;
  static constexpr int kRows = TraceRows<Cell>::kCount;
  RTRL_HD void operator()(index_t s, index_t u) const {
    CellSensitivityRow<T> row{};
    T q[kRows];
    for (int x = 0; x < kRows; ++x) row.q[x] = q + x;
    for (int m = 0; m < Cell::kCoefficients; ++m) row.k[m] = coef[(m * B + s) * H + u];
    const T e = delta_above[s * H + u];
    for (int x = 0; x < Cell::kGates; ++x) {
      for (int y = 0; y < kRows; ++y) q[y] = T(0);
      q[TraceRows<Cell>::input_side(x)] = T(1);
      T p_h = T(0), p_c = T(0);
      row.p_h = &p_h;
      row.p_c = &p_c;
      D[s * Cell::kGates * H + x * H + u] = e * Cell::template propagate<true, kLeaky>(row, 0);
    }
  }
};

}  // namespace rtrl
