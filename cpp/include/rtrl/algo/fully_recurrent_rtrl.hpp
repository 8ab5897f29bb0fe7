// Exact RTRL for the fully recurrent network (DESIGN §3.1), all streams at once.
//
// Per step: the forward step, then for each block of P's columns (ctx.for_product_blocks: the
// context takes Q = W_U P[:, block] its own way — panels in cache on the CPU, one cuBLAS call per
// large block on CUDA — and runs blocks in parallel where it pays): the immediate term (n L values
// per stream, into Q), then one pass over the block that multiplies by f', zeroes forced units,
// writes P in place and the per-column error contraction G (each stream's part of the step's
// gradient); then the sum of G over streams (with one stream G is the step's gradient), the
// non-finite check (nonfinite_guard.hpp) and, in real-time mode, the update
// (else the step's gradient is added to the accumulated one).
#pragma once

#include <cstdint>

#include "rtrl/algo/fully_recurrent_forward.hpp"
#include "rtrl/algo/nonfinite_guard.hpp"
#include "rtrl/algo/optimizer_step.hpp"

namespace rtrl {

// Returns the number of optimizer updates applied so far (options.optimizer_step + updates made);
// `events` receives what the non-finite check saw.
template <class Ctx, class T>
std::int64_t fully_recurrent_rtrl(Ctx& ctx, const FullyRecurrentDims& d,
                                  const FullyRecurrentState<T>& st,
                                  const FullyRecurrentSequence<T>& seq,
                                  const FullyRecurrentOptions& opt, NonfiniteEvents& events) {
  const index_t B = d.batch, n = d.units, L = d.width(), N = d.n_weights();
  const T scale = T(opt.loss_scale);
  auto z_buf = ctx.template alloc<T>(2 * B * L);
  auto unit_buf = ctx.template alloc<T>(5 * B * n + 1);  // and one value for gradient clipping
  auto G_buf = ctx.template alloc<T>(B > 1 ? B * N : 0);
  T* z_t = z_buf.data();
  T* z_next = z_t + B * L;
  const UnitScratch<T> u{unit_buf.data(), unit_buf.data() + B * n, unit_buf.data() + 2 * B * n,
                         unit_buf.data() + 3 * B * n, unit_buf.data() + 4 * B * n};
  const T* W_U = st.weight + d.recurrent_offset();
  const index_t contracted = d.outputs > 0 ? d.outputs : 1;  // units with errors (at least one row)
  const bool update = opt.update_each_step && opt.optimizer.kind != OptimizerKind::none;
  auto step_grad_buf = ctx.template alloc<T>(update ? 0 : N);
  T* step_grad = update ? st.grad : step_grad_buf.data();
  T* G = B > 1 ? G_buf.data() : step_grad;  // the streams' parts of the step's gradient
  NonfiniteGuard<Ctx, T> guard(ctx, opt.on_nonfinite, B, events, update ? N : 0,
                               update ? opt.optimizer.state_rows() * N : 0);
  std::int64_t updates = opt.optimizer_step;

  ctx.for_each(B * n, UnitsOfZ<T>{d, true, z_t, st.y});
  for (index_t t = 0; t < seq.steps; ++t) {
    const T* target_t = seq.target ? seq.target + t * B * d.outputs : nullptr;
    fully_recurrent_forward_step(ctx, d, opt.activation, opt.teacher_forcing, scale, st.weight,
                                 seq.x + t * B * d.inputs, target_t, z_t, z_next, u,
                                 seq.outputs + t * B * d.outputs, seq.loss + t);
    // P's columns in groups of L (one weight row i of one stream), r = s n + i.
    ctx.template for_product_blocks<T>(n, n, B * N, W_U, L, st.P, B * N,
                                       [&](index_t q0, index_t cols, T* Q, index_t ldq) {
      ctx.for_each_serial_k(q0, q0 + cols, L, 1, AddImmediateTerm<T>{d, q0, ldq, z_t, Q});
      ctx.for_each_serial_k(q0, q0 + cols, N, contracted,
                            SensitivityUpdate<T, true>{d, -scale, 0, q0, Q, ldq, u.slope, u.error,
                                                       u.keep, st.P, G});
      ctx.for_each_serial_k(q0, q0 + cols, N, n - contracted,
                            SensitivityUpdate<T, false>{d, -scale, contracted, q0, Q, ldq, u.slope,
                                                        u.error, u.keep, st.P, G});
    });
    if (B > 1) ctx.for_each_serial_k(0, N, N, B, SumOverStreams<T>{N, G, step_grad});
    // pre, slope and error are adjacent in unit_buf: [3, B, n].
    const bool finite = guard.step_ok(
        t, {{step_grad, N}, {u.pre, 3 * B * n}},
        {StreamBlock<const T>{u.pre, 3, B * n, n, n}, StreamBlock<const T>{G, 1, 0, N, N}},
        {StreamBlock<T>{st.P, n, B * N, N, N}, StreamBlock<T>{z_next + d.recurrent_offset(), 1, 0, L, n}});
    if (finite && update) {
      ++updates;
      if (!guard.update_ok(t, st.weight, st.grad, st.opt_state, [&] {
            optimizer_step(ctx, opt.optimizer, updates, N, st.weight, st.grad, st.opt_state,
                         unit_buf.data() + 5 * B * n);
          }))
        --updates;
    } else if (finite)
      ctx.for_each(N, AddInto<T>{step_grad, st.grad});
    else if (update)
      ctx.for_each(N, Fill<T>{T(0), st.grad});
    T* swap = z_t;
    z_t = z_next;
    z_next = swap;
    if (guard.stop()) break;
  }
  ctx.for_each(B * n, UnitsOfZ<T>{d, false, z_t, st.y});
  return updates;
}

}  // namespace rtrl
