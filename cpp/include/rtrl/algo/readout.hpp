// Readout forward, loss and backward over R rows, shared by RTRL (R = B, one step) and BPTT (R = T B).
#pragma once

#include "rtrl/readout.hpp"

namespace rtrl {

template <class Ctx, class T>
void readout_forward_backward(Ctx& ctx, const ReadoutArgs<T>& a) {
  const index_t R = a.rows, H = a.hidden, O = a.outputs;
  auto own = ctx.template alloc<T>(a.scratch ? 0 : R * O + R);
  T* delta = a.scratch ? a.scratch : own.data();
  T* row_loss = delta + R * O;
  ctx.gemm(false, true, R, O, H, T(1), a.h, a.ldh, a.w_out, H, T(0), a.y, O);
  ctx.for_each(R, ReadoutLoss<T>{O, a.loss, a.scale, a.b_out, a.target, a.y, delta, row_loss});
  ctx.row_sums(R / a.per_step, a.per_step, a.scale, row_loss, a.step_loss);
  if (a.delta_h)
    ctx.gemm(false, false, R, H, O, T(1), delta, O, a.feedback ? a.feedback : a.w_out, H, T(0),
             a.delta_h, H);
  ctx.gemm(true, false, O, H, R, T(1), delta, O, a.h, a.ldh, T(a.accumulate ? 1 : 0), a.grad_w_out, H);
  ctx.column_sums(R, O, a.accumulate, delta, a.grad_b_out);
}

}  // namespace rtrl
