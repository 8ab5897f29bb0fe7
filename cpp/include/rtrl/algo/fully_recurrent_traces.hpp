// SnAp-1 and e-prop for the fully recurrent network (DESIGN §9), all streams at once, on the one
// online loop (online_loop.hpp): the model is exact RTRL's (fully_recurrent_rtrl.hpp), the algorithm
// keeps the unit-diagonal traces J [B, n, L] (diagonal_traces.hpp): one pass over the weights per
// step, no product.
#pragma once

#include <cstdint>

#include "rtrl/algo/fully_recurrent_rtrl.hpp"
#include "rtrl/diagonal_traces.hpp"

namespace rtrl {

template <class Ctx, class T>
class FullyRecurrentTraces {
 public:
  // J: [B, n, L]
  FullyRecurrentTraces(const FullyRecurrentDims& d, TraceRule rule, T* J) : d_(d), rule_(rule), J_(J) {}

  static void declare(const FullyRecurrentDims& d, OnlineLayout& l) {
    l.sensitivities += d.batch * d.n_weights();
  }

  void propagate(Ctx& ctx, const FullyRecurrentModel<Ctx, T>& m, T* step_grad) {
    const UnitScratch<T>& u = m.units();
    ctx.for_each_2d(d_.units, d_.width(),
                    FullyRecurrentTraceStep<T>{d_, rule_ == TraceRule::snap1, -m.loss_scale(),
                                               m.params(), m.z(), u.slope, u.error, u.keep, J_,
                                               step_grad});
  }

  void add_checks(StepCheck<T>& c) const {
    const index_t N = d_.n_weights();
    c.watched.push_back(StreamBlock<const T>{J_, 1, 0, N, N});
    c.reset.push_back(StreamBlock<T>{J_, 1, 0, N, N});
  }

  template <class S>
  void carry(S& s) { s.device(J_, d_.batch * d_.n_weights()); }

 private:
  FullyRecurrentDims d_;
  TraceRule rule_;
  T* J_;
};

// st.P holds the traces J [B, n, L]. Returns the optimizer's update count after the call.
template <class Ctx, class T>
std::int64_t fully_recurrent_traces(Ctx& ctx, const FullyRecurrentDims& d,
                                    const FullyRecurrentState<T>& st,
                                    const FullyRecurrentSequence<T>& seq,
                                    const FullyRecurrentOptions& opt, TraceRule rule,
                                    NonfiniteEvents& events) {
  FullyRecurrentModel<Ctx, T> model(ctx, d, st, seq, opt);
  FullyRecurrentTraces<Ctx, T> algorithm(d, rule, st.P);
  const OnlineOptions loop{opt.update_each_step, opt.optimizer, opt.optimizer_step, opt.on_nonfinite,
                           opt.combine_gradient};
  return online_loop<T>(ctx, model, algorithm, loop, seq.steps, events);
}

}  // namespace rtrl
