// One forward step of the fully recurrent network, shared by RTRL and BPTT.
#pragma once

#include "rtrl/fully_recurrent.hpp"

namespace rtrl {

// Per-step scratch of the forward pass, each [B, n].
template <class T>
struct UnitScratch {
  T* pre;
  T* slope;
  T* error;
  T* keep;
  T* sq_error;
};

// z_t: [B, L] with its unit block already holding y(t); writes x(t) and the bias into it, then
// y(t+1) (forced where targets exist and forcing is on) into the unit block of z_next: [B, L].
//   W: [n, L]   x_t: [B, m]   target_t: [B, O] or null   outputs_t: [B, O] or null   loss_t: [1]
template <class Ctx, class T>
void fully_recurrent_forward_step(Ctx& ctx, const FullyRecurrentDims& d, Activation activation,
                                  bool teacher_forcing, T loss_scale, const T* W, const T* x_t,
                                  const T* target_t, T* z_t, T* z_next, const UnitScratch<T>& u,
                                  T* outputs_t, T* loss_t) {
  const index_t B = d.batch, n = d.units;
  ctx.for_each(B * (d.inputs + d.bias), LoadInputs<T>{d, x_t, z_t});
  ctx.dot_rows(B, n, d.width(), z_t, d.width(), W, d.width(), u.pre);  // pre [B, n] = z W^T
  ctx.for_each(B * n, UnitsForward<T>{d, activation, teacher_forcing, u.pre, target_t, u.slope,
                                      u.error, u.keep, u.sq_error, z_next, outputs_t});
  ctx.row_sums(index_t(1), B * n, loss_scale, u.sq_error, loss_t);
}

}  // namespace rtrl
