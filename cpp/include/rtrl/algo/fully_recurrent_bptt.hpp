// Backpropagation through time for the fully recurrent network over one sequence (weights fixed
// during the sequence). Forward with the shared step, storing z, f', e and the forcing mask; a
// reverse loop of one small GEMM per step; the weight gradient as one GEMM over all T B rows. The
// sequence is BPTT's step for the non-finite policy (guarded_chunk): its gradient, added into grad,
// is dropped when it or the new state is non-finite.
#pragma once

#include "rtrl/algo/fully_recurrent_forward.hpp"
#include "rtrl/algo/nonfinite_guard.hpp"

namespace rtrl {

// seq.target may be null (no targets: zero gradient).
template <class Ctx, class T>
void fully_recurrent_bptt(Ctx& ctx, const FullyRecurrentDims& d,
                          const FullyRecurrentBpttState<T>& st,
                          const FullyRecurrentSequence<T>& seq, Activation activation,
                          bool teacher_forcing, double loss_scale, NonfinitePolicy policy,
                          NonfiniteEvents& events) {
  const index_t B = d.batch, n = d.units, L = d.width(), Tn = seq.steps;
  const index_t BL = B * L, Bn = B * n;
  const T scale = T(loss_scale);
  auto z_buf = ctx.template alloc<T>((Tn + 1) * BL);    // z(0..T)
  auto saved = ctx.template alloc<T>(3 * Tn * Bn);      // slope, error, keep per step
  auto scratch = ctx.template alloc<T>(2 * Bn);         // pre, sq_error of the current step
  auto delta_buf = ctx.template alloc<T>(Tn * Bn);      // dL/ds(t), [T, B, n]
  auto g_rec = ctx.template alloc<T>(Bn);               // dL/dy(t+1) through z(t+1)
  T* zs = z_buf.data();
  T* slope = saved.data();
  T* error = slope + Tn * Bn;
  T* keep = error + Tn * Bn;
  T* delta = delta_buf.data();

  auto run = [&] {
    ctx.for_each(Bn, UnitsOfZ<T>{d, true, zs, st.y});
    for (index_t t = 0; t < Tn; ++t) {
      const UnitScratch<T> u{scratch.data(), slope + t * Bn, error + t * Bn, keep + t * Bn,
                             scratch.data() + Bn};
      const T* target_t = seq.target ? seq.target + t * B * d.outputs : nullptr;
      fully_recurrent_forward_step(ctx, d, activation, teacher_forcing, scale, st.weight,
                                   seq.x + t * B * d.inputs, target_t, zs + t * BL, zs + (t + 1) * BL,
                                   u, seq.outputs + t * B * d.outputs, seq.loss + t);
    }
    ctx.for_each(Bn, UnitsOfZ<T>{d, false, zs + Tn * BL, st.y});

    const T* W_U = st.weight + d.recurrent_offset();
    for (index_t t = Tn - 1; t >= 0; --t) {
      const T* rec = nullptr;
      if (t + 1 < Tn) {
        ctx.gemm(false, false, B, n, n, T(1), delta + (t + 1) * Bn, n, W_U, L, T(0), g_rec.data(), n);
        rec = g_rec.data();
      }
      ctx.for_each(Bn, BackpropDelta<T>{scale, slope + t * Bn, error + t * Bn, keep + t * Bn, rec,
                                        delta + t * Bn});
    }
    // grad[n, L] += sum over (t, s) of delta[t, s, :]^T z[t, s, :]
    ctx.gemm(true, false, n, L, Tn * B, T(1), delta, n, zs, L, T(1), st.grad, L);
  };
  // The offending streams: those with a non-finite input, output, dL/ds or new state.
  auto declare = [&](StepCheck<T>& c) {
    const index_t I = d.inputs, O = d.outputs;
    c.ranges.push_back({st.y, Bn});
    c.watched.push_back(StreamBlock<const T>{seq.x, Tn, B * I, I, I});
    c.watched.push_back(StreamBlock<const T>{seq.outputs, Tn, B * O, O, O});
    c.watched.push_back(StreamBlock<const T>{delta, Tn, Bn, n, n});
    c.watched.push_back(StreamBlock<const T>{st.y, 1, 0, n, n});
    c.reset.push_back(StreamBlock<T>{st.y, 1, 0, n, n});
  };
  guarded_chunk<T>(ctx, policy, B, events, st.grad, n * L, run, declare);
}

}  // namespace rtrl
