// Exact RTRL for RecurrentNet (one RNN/LSTM/GRU layer and a linear readout), all streams at once
// (DESIGN §3.3). Per step: the cell's forward kernel, the readout with its loss and dL/dh, then for
// each block of sensitivity columns (ctx.for_product_blocks) the product Q = W_hh P_h(t-1) plus the
// immediate terms and one pass that writes P_h(t) (and P_c(t)) in place and contracts dL/dh into
// the gradient; then the stream reduction into the step's gradient, the non-finite check
// (nonfinite_guard.hpp), and in real-time mode the optimizer's update of all parameters (else the
// step's gradient is added to the accumulated one).
#pragma once

#include <cstdint>

#include "rtrl/algo/nonfinite_guard.hpp"
#include "rtrl/algo/optimizer_step.hpp"
#include "rtrl/algo/readout.hpp"
#include "rtrl/algo/recurrent_layer.hpp"
#include "rtrl/cell_rtrl.hpp"

namespace rtrl {

template <class Cell, class T> struct SensitivityOf;
template <class T> struct SensitivityOf<RnnCell, T> { using type = RnnSensitivity<T>; };
template <class T> struct SensitivityOf<LstmCell, T> { using type = LstmSensitivity<T>; };
template <class T> struct SensitivityOf<GruCell, T> { using type = GruSensitivity<T>; };

// Returns the optimizer's update count after the call; `events` receives what the non-finite check
// saw.
template <class Cell, class Ctx, class T>
std::int64_t cell_net_rtrl(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st,
                           const CellNetSequence<T>& seq, const CellNetOptions& opt,
                           NonfiniteEvents& events) {
  const index_t B = d.batch, H = d.hidden, I = d.inputs, O = d.outputs, GH = d.gates() * H;
  const index_t W = d.width(), Np = d.n_theta(), BH = B * H;
  const bool update = opt.update_each_step && opt.optimizer.kind != OptimizerKind::none;
  constexpr int K = CellCoefficients<Cell>::K;
  auto step_buf = ctx.template alloc<T>(B * W + 2 * B * GH + (4 + K) * BH + Np + B * O + B + 1);
  T* v = step_buf.data();
  T* gates = v + B * W;
  T* hw = gates + B * GH;
  T* c_new = hw + B * GH;
  T* aux = c_new + BH;
  T* h_new = aux + BH;
  T* delta_h = h_new + BH;
  T* coef = delta_h + BH;
  T* packed = coef + K * BH;
  T* readout_scratch = packed + Np;  // [B O + B]
  T* norm = readout_scratch + B * O + B;  // [1] gradient clipping
  auto G_buf = ctx.template alloc<T>(B * Np);
  T* G = G_buf.data();
  auto step_grad_buf = ctx.template alloc<T>(update ? 0 : d.n_params());
  T* step_grad = update ? st.grad : step_grad_buf.data();
  NonfiniteGuard<Ctx, T> guard(ctx, opt.on_nonfinite, B, events, update ? d.n_params() : 0,
                               update ? opt.optimizer.state_rows() * d.n_params() : 0);
  const index_t lstm = st.c ? 1 : 0;
  const T* w_ih = st.params;
  const T* w_hh = st.params + d.off_w_hh();
  const T* b_ih = st.params + d.off_b_ih();
  const T* b_hh = st.params + d.off_b_hh();
  const T* w_out = st.params + d.off_w_out();
  const T* b_out = st.params + d.off_b_out();
  const index_t target_width = opt.loss == LossKind::mse ? O : 1;
  std::int64_t updates = opt.optimizer_step;

  for (index_t t = 0; t < seq.steps; ++t) {
    const T* x_t = seq.x + t * B * I;
    ctx.for_each_serial_k(0, B * W, W, 1, LoadColumnValues<T>{d, x_t, st.h, v});
    ctx.gemm(false, true, B, GH, I, T(1), x_t, I, w_ih, I, T(0), gates, GH);
    ctx.gemm(false, true, B, GH, H, T(1), st.h, H, w_hh, H, T(0), hw, GH);
    const CellForwardStep<T> fwd{H, d.nonlinearity, hw, b_ih, b_hh, st.h, H, st.c, gates,
                                 c_new, aux, h_new, H};
    ctx.for_each_2d(B, H, CellForwardOp<Cell, T>{fwd});

    ReadoutArgs<T> ra{};
    ra.rows = B;
    ra.hidden = H;
    ra.outputs = O;
    ra.per_step = B;
    ra.loss = opt.loss;
    ra.scale = T(opt.loss_scale);
    ra.h = h_new;
    ra.ldh = H;
    ra.w_out = w_out;
    ra.b_out = b_out;
    ra.target = seq.target ? seq.target + t * B * target_width : nullptr;
    ra.y = seq.outputs + t * B * O;
    ra.step_loss = seq.loss + t;
    ra.delta_h = delta_h;
    ra.grad_w_out = step_grad + d.off_w_out();
    ra.grad_b_out = step_grad + d.off_b_out();
    ra.accumulate = false;
    ra.scratch = readout_scratch;
    readout_forward_backward(ctx, ra);

    ctx.for_each_2d(B, H, ComputeCoefficients<Cell, T>{d, gates, st.c, c_new, aux, st.h, coef});
    // P's columns in groups of W (one gate row g' of one stream), r = s G H + g'.
    ctx.template for_product_blocks<T>(GH, H, B * Np, w_hh, H, st.P_h, B * Np,
                                       [&](index_t q0, index_t cols, T* Q, index_t ldq) {
      ctx.for_each_serial_k(q0, q0 + cols, W, 1, AddCellImmediateTerm<T>{d, q0, ldq, v, Q});
      const CellSensitivityStep<T> a{d, q0, Q, ldq, coef, v, delta_h, st.P_h, st.P_c, G};
      ctx.for_each_serial_k(q0, q0 + cols, Np, H, typename SensitivityOf<Cell, T>::type{a});
    });
    ctx.for_each_serial_k(0, Np, Np, B, SumOverStreams<T>{Np, G, packed});
    ctx.for_each_2d(GH, W, ScatterThetaGradient<T>{d, false, packed, step_grad});
    // h_new and delta_h are adjacent in step_buf: [2, B, H].
    const bool finite = guard.step_ok(
        t, {{step_grad, d.n_params()}, {h_new, 2 * BH}, {c_new, lstm * BH}},
        {StreamBlock<const T>{h_new, 2, BH, H, H}, StreamBlock<const T>{c_new, lstm, 0, H, H},
         StreamBlock<const T>{G, 1, 0, Np, Np}},
        {StreamBlock<T>{st.P_h, H, B * Np, Np, Np}, StreamBlock<T>{st.P_c, lstm * H, B * Np, Np, Np},
         StreamBlock<T>{h_new, 1, 0, H, H}, StreamBlock<T>{c_new, lstm, 0, H, H}});
    if (finite && update) {
      ++updates;
      if (!guard.update_ok(t, st.params, st.grad, st.opt_state, [&] {
            optimizer_step(ctx, opt.optimizer, updates, d.n_params(), st.params, st.grad, st.opt_state,
                           norm);
          }))
        --updates;
    } else if (finite)
      ctx.for_each(d.n_params(), AddInto<T>{step_grad, st.grad});
    else if (update)
      ctx.for_each(d.n_params(), Fill<T>{T(0), st.grad});
    ctx.for_each(BH, CopyRows<T>{H, h_new, H, st.h, H});
    if (st.c) ctx.for_each(BH, CopyRows<T>{H, c_new, H, st.c, H});
    if (guard.stop()) break;
  }
  return updates;
}

}  // namespace rtrl
