// UORO for the fully recurrent network (DESIGN §9), all streams at once, on the one online loop
// (online_loop.hpp): the model is exact RTRL's; the algorithm keeps per stream the state tangent
// s~ [B, n] and the weight tangent theta~ [B, n, L] (uoro.hpp). A forced unit's state does not depend
// on the weights: its entry of s~ is zeroed after the step's contraction.
#pragma once

#include <cstdint>

#include "rtrl/algo/fully_recurrent_rtrl.hpp"
#include "rtrl/uoro.hpp"

namespace rtrl {

template <class Ctx, class T>
class FullyRecurrentUoro {
 public:
  // theta: [B, n, L]   tilde: [B, n]
  FullyRecurrentUoro(Ctx& ctx, const FullyRecurrentDims& d, T* theta, T* tilde, const RandomStream& random)
      : d_(d), theta_(theta), tilde_(tilde), random_(random),
        buf_(ctx.template alloc<T>(buffer_size(d))) {}

  static void declare(const FullyRecurrentDims& d, OnlineLayout& l) {
    l.sensitivities += d.batch * d.n_weights() + d.batch * d.units;
    l.workspace += buffer_size(d);
  }

  // s~' [B, n], A [B, n], scales [B, 3]
  static index_t buffer_size(const FullyRecurrentDims& d) { return 2 * d.batch * d.units + 3 * d.batch; }

  void propagate(Ctx& ctx, const FullyRecurrentModel<Ctx, T>& m, T* step_grad) {
    const index_t B = d_.batch, n = d_.units;
    const UnitScratch<T>& u = m.units();
    T* next = buf_.data();
    T* A = next + B * n;
    T* rho = A + B * n;
    const Philox rng{random_.seed, random_.first_stream};
    ctx.for_each_2d(B, n, FullyRecurrentUoroState<T>{d_, m.params(), tilde_, u.slope, next, A, rng,
                                                      random_.step, T(random_.immediate_scale)});
    ctx.for_each(B, FullyRecurrentUoroScales<T>{d_, -m.loss_scale(), theta_, m.z(), A, next, u.error, u.keep,
                                                tilde_, rho, rng, random_.step});
    ctx.for_each_2d(n, d_.width(), FullyRecurrentUoroParams<T>{d_, m.z(), A, rho, theta_, step_grad});
    ++random_.step;
  }

  void add_checks(StepCheck<T>& c) const {
    const index_t N = d_.n_weights(), n = d_.units;
    c.watched.push_back(StreamBlock<const T>{theta_, 1, 0, N, N});
    c.reset.push_back(StreamBlock<T>{theta_, 1, 0, N, N});
    c.watched.push_back(StreamBlock<const T>{tilde_, 1, 0, n, n});
    c.reset.push_back(StreamBlock<T>{tilde_, 1, 0, n, n});
  }

  template <class S>
  void carry(S& s) {
    s.device(theta_, d_.batch * d_.n_weights());
    s.device(tilde_, d_.batch * d_.units);
    s.host(random_.step);
  }

 private:
  FullyRecurrentDims d_;
  T* theta_;
  T* tilde_;
  RandomStream random_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) buf_;
};

// st.P holds theta~ [B, n, L]; tilde: s~ [B, n]. Returns the optimizer's update count after the call.
template <class Ctx, class T>
std::int64_t fully_recurrent_uoro(Ctx& ctx, const FullyRecurrentDims& d, const FullyRecurrentState<T>& st,
                                  T* tilde, const FullyRecurrentSequence<T>& seq,
                                  const FullyRecurrentOptions& opt, const RandomStream& random,
                                  NonfiniteEvents& events) {
  FullyRecurrentModel<Ctx, T> model(ctx, d, st, seq, opt);
  FullyRecurrentUoro<Ctx, T> algorithm(ctx, d, st.P, tilde, random);
  const OnlineOptions loop{opt.update_each_step, opt.optimizer, opt.optimizer_step, opt.on_nonfinite,
                           opt.combine_gradient};
  return online_loop<T>(ctx, model, algorithm, loop, seq.steps, events);
}

}  // namespace rtrl
