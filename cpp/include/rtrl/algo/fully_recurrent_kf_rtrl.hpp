// KF-RTRL for the fully recurrent network (DESIGN §9), all streams at once, on the one online loop
// (online_loop.hpp): the model is exact RTRL's; the algorithm keeps per stream the Kronecker factors
// A (A [n, B n], column s n + r for weight row r) and u [B, L] (kf_rtrl.hpp): one product W_U A per
// step, then pointwise passes, and the gradient as one product w^T u over the streams.
#pragma once

#include <cstdint>

#include "rtrl/algo/fully_recurrent_rtrl.hpp"
#include "rtrl/kf_rtrl.hpp"

namespace rtrl {

template <class Ctx, class T>
class FullyRecurrentKfRtrl {
 public:
  // A: [n, B n]   u: [B, L]
  FullyRecurrentKfRtrl(Ctx& ctx, const FullyRecurrentDims& d, T* A, T* u, const RandomStream& random)
      : d_(d), A_(A), u_(u), random_(random), buf_(ctx.template alloc<T>(buffer_size(d))) {}

  static void declare(const FullyRecurrentDims& d, OnlineLayout& l) {
    l.sensitivities += d.units * d.batch * d.units + d.batch * d.width();
    l.workspace += buffer_size(d);
  }

  // Q [n, B n], dL/dy [B, n], column norms [B, n], factors [B, 2], w [B, n].
  static index_t buffer_size(const FullyRecurrentDims& d) {
    const index_t Bn = d.batch * d.units;
    return d.units * Bn + 3 * Bn + 2 * d.batch;
  }

  void propagate(Ctx& ctx, const FullyRecurrentModel<Ctx, T>& m, T* step_grad) {
    const index_t B = d_.batch, n = d_.units, L = d_.width(), ld = B * n;
    const UnitScratch<T>& u = m.units();
    T* Q = buf_.data();
    T* delta = Q + n * ld;
    T* sums = delta + ld;
    T* w = sums + ld;
    T* k = w + ld;
    const Philox rng{random_.seed, random_.first_stream};
    ctx.gemm(false, false, n, ld, n, T(1), m.params() + d_.recurrent_offset(), L, A_, ld, T(0), Q, ld);
    ctx.for_each_2d(n, ld, KfFullyRecurrentSlope<T>{n, u.slope, Q, A_, ld});
    kf_column_norms(ctx, n, n, B, A_, static_cast<const T*>(nullptr), sums);
    ctx.for_each(B, KfScales<T>{n, L, sums, u.slope, nullptr, u_, m.z(), k, rng, random_.step, 0});
    kf_update(ctx, n, n, d_.batch, u.slope, k, A_, T(random_.immediate_scale));
    ctx.for_each(ld, ScaledCopy<T>{-m.loss_scale(), u.error, delta});
    ctx.for_each_serial_k(0, ld, n, n, KfContract<T>{n, n, B, delta, A_, w});
    ctx.gemm(true, false, n, L, B, T(1), w, n, u_, L, T(0), step_grad, L);
    ctx.for_each_2d(n, ld, KfZeroForced<T>{n, ld, u.keep, A_});
    ++random_.step;
  }

  void add_checks(StepCheck<T>& c) const {
    const index_t n = d_.units, L = d_.width();
    c.watched.push_back(StreamBlock<const T>{A_, n, d_.batch * n, n, n});
    c.reset.push_back(StreamBlock<T>{A_, n, d_.batch * n, n, n});
    c.watched.push_back(StreamBlock<const T>{u_, 1, 0, L, L});
    c.reset.push_back(StreamBlock<T>{u_, 1, 0, L, L});
  }

  template <class S>
  void carry(S& s) {
    s.device(A_, d_.units * d_.batch * d_.units);
    s.device(u_, d_.batch * d_.width());
    s.host(random_.step);
  }

 private:
  FullyRecurrentDims d_;
  T* A_;
  T* u_;
  RandomStream random_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) buf_;
};

// st.P holds A [n, B n]; u: [B, L]. Returns the optimizer's update count after the call.
template <class Ctx, class T>
std::int64_t fully_recurrent_kf(Ctx& ctx, const FullyRecurrentDims& d, const FullyRecurrentState<T>& st,
                                T* u, const FullyRecurrentSequence<T>& seq,
                                const FullyRecurrentOptions& opt, const RandomStream& random,
                                NonfiniteEvents& events) {
  FullyRecurrentModel<Ctx, T> model(ctx, d, st, seq, opt);
  FullyRecurrentKfRtrl<Ctx, T> algorithm(ctx, d, st.P, u, random);
  const OnlineOptions loop{opt.update_each_step, opt.optimizer, opt.optimizer_step, opt.on_nonfinite,
                           opt.combine_gradient};
  return online_loop<T>(ctx, model, algorithm, loop, seq.steps, events);
}

}  // namespace rtrl
