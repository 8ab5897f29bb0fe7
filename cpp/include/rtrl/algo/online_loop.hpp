// The one online-learning loop (DESIGN §8): every online learner runs this step, written once over
// a backend context. Per time step:
//   model.forward(t, step_grad)        the model's step: its new state, outputs, loss and
//                                      dL/dstate; the readout's own gradient into step_grad
//   algorithm.propagate(model, step_grad)
//                                      the learner's sensitivity-like state moved on one step and
//                                      contracted with dL/dstate into step_grad
//   the non-finite guard               on what both declare (add_checks)
//   opt.combine_gradient               with other processes, when set (DESIGN §12): the gradient,
//                                      the verdict and the streams to reset
//   optimizer (real-time) or accumulation (epoch)
//   model.advance()                    the new state becomes the current one
// A model offers begin/forward/advance/end, the parameter pointers, add_checks and carry (what carries
// from step to step, check_window.hpp); an algorithm offers propagate, add_checks and carry. What
// differs between learners is only the algorithm.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "rtrl/algo/check_window.hpp"
#include "rtrl/algo/layout.hpp"
#include "rtrl/algo/nonfinite_guard.hpp"
#include "rtrl/algo/optimizer_step.hpp"

namespace rtrl {

struct OnlineOptions {
  bool update_each_step = false;  // real-time mode with an optimizer; else accumulate into grad
  OptimizerConfig optimizer;
  std::int64_t optimizer_step = 0;  // updates applied so far (Adam's t before this call)
  NonfinitePolicy on_nonfinite = NonfinitePolicy::raise;
  GradientCombiner combine_gradient;  // the other processes (nonfinite.hpp), or empty
};

// The loop's own buffers: the step's gradient (or, with an update every step, the copy of
// parameters, gradient and optimizer state an update is undone from) and the clipping norm.
inline index_t online_loop_workspace(index_t n_params, bool update, index_t state_rows) {
  return (update ? (2 + state_rows) * n_params : n_params) + 1;
}

// What a check window copies (check_window.hpp): the model's and the algorithm's carried state, the
// parameters, the gradient and the optimizer's state [state].
template <class Model, class Algorithm, class Dims>
index_t online_carried(const Dims& d, index_t n_params, index_t state) {
  OnlineLayout l;
  Model::declare(d, l);
  Algorithm::declare(d, l);
  return l.carried + l.sensitivities + 2 * n_params + state;
}

// What online_loop over Model and Algorithm holds and needs (layout.hpp): the parts both declare next
// to their buffers, and the loop's own workspace for n_params parameters (with a check window's copy
// on a context that defers its checks, when it takes one).
template <class Model, class Algorithm, class Dims>
OnlineLayout online_layout(const Dims& d, index_t n_params, bool update, index_t state_rows) {
  OnlineLayout l;
  Model::declare(d, l);
  Algorithm::declare(d, l);
  l.workspace += online_loop_workspace(n_params, update, state_rows);
  if constexpr (Model::Context::kDefersChecks) {
    const index_t carried = online_carried<Model, Algorithm>(d, n_params, state_rows * n_params);
    if (carried <= kCheckWindowElements) l.workspace += carried;
  }
  return l;
}

// Runs `steps` online steps; returns the optimizer's update count after the call. `events` receives
// what the non-finite check saw. On a context that defers its checks the steps run in check windows
// (check_window.hpp), with the same results.
template <class T, class Ctx, class Model, class Algorithm>
std::int64_t online_loop(Ctx& ctx, Model& model, Algorithm& algorithm, const OnlineOptions& opt,
                         index_t steps, NonfiniteEvents& events) {
  const index_t np = model.n_params();
  const bool update = opt.update_each_step && opt.optimizer.kind != OptimizerKind::none;
  auto own = ctx.template alloc<T>((update ? 0 : np) + 1);
  T* step_grad = update ? model.grad() : own.data();
  T* norm = own.data() + (update ? 0 : np);  // [1] gradient clipping
  NonfiniteGuard<Ctx, T> guard(ctx, opt.on_nonfinite, model.streams(), events, update ? np : 0,
                               update ? opt.optimizer.state_rows() * np : 0);
  StepCheck<T> check;
  std::int64_t updates = opt.optimizer_step;
  auto step = [&](index_t t) {
    model.forward(ctx, t, step_grad);
    algorithm.propagate(ctx, model, step_grad);
    check.clear();
    check.ranges.push_back({step_grad, np});
    model.add_checks(check);
    algorithm.add_checks(check);
    bool finite = guard.step_ok(t, check.ranges, check.watched, check.reset);
    if (opt.combine_gradient && (update || opt.combine_gradient.each_step)) {
      std::vector<index_t> streams = finite ? std::vector<index_t>() : guard.reset_streams();
      const bool everywhere = opt.combine_gradient.combine(update ? step_grad : nullptr, np, finite, streams);
      if (!everywhere) guard.adopt(t, finite, streams, check.reset);  // another process's step was not finite
      finite = everywhere;
      if (finite && update) guard.gradient_changed(step_grad, np);
    }
    if (finite && update) {
      ++updates;
      const bool clips = opt.optimizer.max_grad_norm > 0.0;  // clipping scales the gradient in place
      if (!guard.update_ok(t, model.params(), model.grad(), model.opt_state(), clips,
                           [&](T* backup, UpdateBounds<T>* bounds) {
                             return optimizer_step(ctx, opt.optimizer, updates, np, model.params(),
                                                   model.grad(), model.opt_state(), norm, backup, bounds);
                           }))
        --updates;
    } else if (finite) {
      ctx.for_each(np, AddInto<T>{step_grad, model.grad()});
    } else if (update) {
      ctx.for_each(np, Fill<T>{T(0), model.grad()});
    }
    model.advance(ctx);
  };
  model.begin(ctx);
  index_t t = 0;
  if constexpr (Ctx::kDefersChecks) {
    const index_t state = opt.optimizer.state_rows() * np;
    const index_t carried = online_carried<Model, Algorithm>(model.dims(), np, state);
    const index_t window = opt.combine_gradient ? 1 : ctx.check_window();  // other processes: every step
    if (window > 1 && steps > 1 && carried <= kCheckWindowElements) {
      auto saved = ctx.template alloc<T>(carried);
      std::vector<unsigned char> host;
      auto carry = [&](auto& s) {
        model.carry(s);
        algorithm.carry(s);
        s.device(model.params(), np);
        s.device(model.grad(), np);
        s.device(model.opt_state(), state);
        s.host(updates);
        s.finish();
      };
      for (; t < steps; t = std::min(steps, t + window)) {
        const index_t end = std::min(steps, t + window);
        CarriedState<Ctx, T, true> save(ctx, saved.data(), carried, host);
        carry(save);
        ctx.defer_checks(true);
        for (index_t u = t; u < end; ++u) step(u);
        ctx.defer_checks(false);
        if (ctx.deferred_ok()) continue;
        CarriedState<Ctx, T, false> restore(ctx, saved.data(), carried, host);
        carry(restore);
        for (index_t u = t; u < end && !guard.stop(); ++u) step(u);
        if (guard.stop()) break;
      }
    }
  }
  for (; t < steps && !guard.stop(); ++t) step(t);
  model.end(ctx);
  return updates;
}

}  // namespace rtrl
