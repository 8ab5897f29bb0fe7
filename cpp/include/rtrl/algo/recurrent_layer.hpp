// Forward and backward of one recurrent layer in one direction (DESIGN §3.4): the input projection of
// all T B rows in one GEMM, then per step one recurrent GEMM and one fused pointwise kernel; backward a
// reverse loop of pointwise + one GEMM for dh, and the weight gradients as large GEMMs after the loop.
#pragma once

#include "rtrl/array_ops.hpp"
#include "rtrl/cells/elstm.hpp"
#include "rtrl/cells/gru.hpp"
#include "rtrl/cells/lstm.hpp"
#include "rtrl/cells/rnn.hpp"
#include "rtrl/recurrent_layer.hpp"

namespace rtrl {

// A cell's pointwise step per (stream, unit): a few exponentials and a dozen flops.
constexpr index_t kCellItemCost = 8;

template <class Cell, class T>
struct CellForwardOp {
  static constexpr index_t kItemCost = kCellItemCost;
  CellForwardStep<T> a;
  RTRL_HD void operator()(index_t b, index_t j) const { Cell::forward(a, b, j); }
};

template <class Cell, class T>
struct CellBackwardOp {
  static constexpr index_t kItemCost = kCellItemCost;
  CellBackwardStep<T> a;
  RTRL_HD void operator()(index_t b, index_t j) const { Cell::backward(a, b, j); }
};

// Below this many rows (steps x streams) the forward multiplies by the weights read transposed.
constexpr index_t kTransposeRows = 64;

template <class Cell, class Ctx, class T>
void recurrent_layer_forward(Ctx& ctx, const LayerDims& d, const LayerWeights<T>& w,
                             const LayerForward<T>& io, const LayerSaved<T>& saved) {
  const index_t B = d.batch, H = d.hidden, I = d.inputs, GH = d.gates() * H, BH = B * H;
  // Long sequences project the inputs with a transposed copy of W_ih (a plain NN GEMM); a few
  // steps, as in a cell's single step, are cheaper with the transposed operand than with the copy.
  const bool transpose = d.steps * B >= kTransposeRows;
  auto wt = ctx.template alloc<T>(transpose ? I * GH : 0);
  const T* w_ih_op = w.w_ih;
  if (transpose) {
    ctx.transpose(GH, I, w.w_ih, wt.data());  // [I, G H]
    w_ih_op = wt.data();
  }
  // op(W) [K, G H] as a GEMM operand: the transposed copy, or W [G H, K] read transposed
  auto times_weights = [&](index_t M, index_t K, const T* A, index_t lda, const T* op, T* C) {
    if (transpose) ctx.gemm(false, false, M, GH, K, T(1), A, lda, op, GH, T(0), C, GH);
    else ctx.gemm(false, true, M, GH, K, T(1), A, lda, op, K, T(0), C, GH);
  };
  // W_hh^T [H, G H], the right operand of every step's product (packed once where that pays)
  const auto w_hh_op = ctx.pack_operand(true, H, GH, w.w_hh, H, d.steps);
  // zeros stand in for a missing h0/c0 or bias; hw = h W_hh^T
  const index_t n_zeros = BH > GH ? BH : GH;
  auto state = ctx.template alloc<T>(n_zeros + B * GH);
  T* zeros = state.data();
  T* hw = zeros + n_zeros;
  ctx.for_each(n_zeros, Fill<T>{T(0), zeros});
  const T* b_ih = w.b_ih ? w.b_ih : zeros;
  const T* b_hh = w.b_hh ? w.b_hh : zeros;

  // gates[t] = x[t] W_ih^T for all steps at once; the pointwise pass adds the biases.
  times_weights(d.steps * B, I, io.x, io.ldx, w_ih_op, saved.gates);
  for (index_t k = 0; k < d.steps; ++k) {
    const index_t t = d.time(k), t_prev = d.time(k - 1);
    const T* h_prev = k == 0 ? (io.h0 ? io.h0 : zeros) : io.y + t_prev * B * io.ldy;
    const index_t ld_h_prev = k == 0 ? H : io.ldy;
    const T* c_prev = nullptr;
    if (Cell::kHasCellState) c_prev = k == 0 ? (io.c0 ? io.c0 : zeros) : saved.c + t_prev * BH;
    ctx.gemm_packed(B, h_prev, ld_h_prev, w_hh_op, false, hw, GH);
    CellForwardStep<T> a{H, d.nonlinearity, hw, b_ih, b_hh, h_prev, ld_h_prev, c_prev,
                         saved.gates + t * B * GH,
                         saved.c ? saved.c + t * BH : nullptr,
                         saved.aux ? saved.aux + t * BH : nullptr,
                         io.y + t * B * io.ldy, io.ldy};
    a.alpha = T(d.alpha);
    ctx.for_each_2d(B, H, CellForwardOp<Cell, T>{a});
  }
  const index_t t_last = d.time(d.steps - 1);
  if (d.steps == 0) {
    ctx.for_each_2d(B, H, CopyRows<T>{io.h0 ? io.h0 : zeros, H, io.h_n, H});
    if (io.c_n) ctx.for_each_2d(B, H, CopyRows<T>{io.c0 ? io.c0 : zeros, H, io.c_n, H});
    return;
  }
  ctx.for_each_2d(B, H, CopyRows<T>{io.y + t_last * B * io.ldy, io.ldy, io.h_n, H});
  if (io.c_n) ctx.for_each_2d(B, H, CopyRows<T>{saved.c + t_last * BH, H, io.c_n, H});
}

template <class Cell, class Ctx, class T>
void recurrent_layer_backward(Ctx& ctx, const LayerDims& d, const LayerWeights<T>& w,
                              const LayerForward<T>& io, const LayerSaved<T>& saved,
                              const LayerGrads<T>& g) {
  const index_t B = d.batch, H = d.hidden, I = d.inputs, GH = d.gates() * H, BH = B * H;
  const index_t TB = d.steps * B;
  const bool separate = Cell::kSeparateHiddenGrad;
  // the cell leaves a direct part of dL/dh(t-1)
  const bool direct = separate || Cell::kDirectStatePath || d.alpha != 1.0;
  auto dgates = ctx.template alloc<T>((separate ? 2 : 1) * TB * GH);
  T* d_ih = dgates.data();
  T* d_hh = separate ? d_ih + TB * GH : d_ih;
  auto state = ctx.template alloc<T>(3 * BH + TB);  // zeros, dh, dc, ones
  T* zeros = state.data();
  T* dh = zeros + BH;
  T* dc = dh + BH;
  T* ones = dc + BH;
  ctx.for_each(BH, Fill<T>{T(0), zeros});
  ctx.for_each(TB, Fill<T>{T(1), ones});
  ctx.for_each_2d(B, H, CopyRows<T>{g.dh_n ? g.dh_n : zeros, H, dh, H});
  ctx.for_each_2d(B, H, CopyRows<T>{g.dc_n ? g.dc_n : zeros, H, dc, H});
  const auto w_hh_op = ctx.pack_operand(false, GH, H, w.w_hh, H, d.steps);  // W_hh [G H, H]

  for (index_t k = d.steps - 1; k >= 0; --k) {
    const index_t t = d.time(k), t_prev = d.time(k - 1);
    const T* h_prev = k == 0 ? (io.h0 ? io.h0 : zeros) : io.y + t_prev * B * io.ldy;
    const index_t ld_h_prev = k == 0 ? H : io.ldy;
    const T* c_prev = nullptr;
    if (Cell::kHasCellState) c_prev = k == 0 ? (io.c0 ? io.c0 : zeros) : saved.c + t_prev * BH;
    CellBackwardStep<T> a{H, d.nonlinearity, saved.gates + t * B * GH,
                          saved.c ? saved.c + t * BH : nullptr, c_prev,
                          saved.aux ? saved.aux + t * BH : nullptr, h_prev, ld_h_prev,
                          io.y + t * B * io.ldy, io.ldy, g.dy + t * B * g.lddy, g.lddy, dh, dc,
                          d_ih + t * B * GH, d_hh + t * B * GH};
    a.alpha = T(d.alpha);
    ctx.for_each_2d(B, H, CellBackwardOp<Cell, T>{a});
    // dL/dh(t-1) = d_hh(t) W_hh (+ the direct part the GRU or leaky cell left in dh)
    ctx.gemm_packed(B, d_hh + t * B * GH, GH, w_hh_op, direct, dh, H);
  }
  ctx.for_each_2d(B, H, CopyRows<T>{dh, H, g.dh0, H});
  if (g.dc0) ctx.for_each_2d(B, H, CopyRows<T>{dc, H, g.dc0, H});
  if (d.steps == 0) return;

  // dW_ih += d_ih^T x;  dx = d_ih W_ih
  ctx.gemm(true, false, GH, I, TB, T(1), d_ih, GH, io.x, io.ldx, T(1), g.dw_ih, I);
  ctx.gemm(false, false, TB, I, GH, T(1), d_ih, GH, w.w_ih, I, T(g.accumulate_dx ? 1 : 0), g.dx, I);
  // dW_hh += sum_t d_hh(t)^T h_prev(t): h_prev is y at the previously processed step, or h0.
  const index_t first = d.time(0);
  const index_t later0 = d.reverse ? 0 : 1;  // the first time index whose h_prev is a row of y
  if (d.steps > 1)
    ctx.gemm(true, false, GH, H, (d.steps - 1) * B, T(1), d_hh + later0 * B * GH, GH,
             io.y + (d.reverse ? 1 : 0) * B * io.ldy, io.ldy, T(1), g.dw_hh, H);
  if (io.h0)
    ctx.gemm(true, false, GH, H, B, T(1), d_hh + first * B * GH, GH, io.h0, H, T(1), g.dw_hh, H);
  if (g.db_ih) {
    ctx.gemm(true, false, GH, 1, TB, T(1), d_ih, GH, ones, 1, T(1), g.db_ih, 1);
    ctx.gemm(true, false, GH, 1, TB, T(1), d_hh, GH, ones, 1, T(1), g.db_hh, 1);
  }
}

}  // namespace rtrl
