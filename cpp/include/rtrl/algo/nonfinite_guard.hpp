// The per-step non-finite check of the RTRL time loops (on_nonfinite="raise" | "skip").
//
// After a step has computed its new state and its gradient, and before the gradient is applied or
// accumulated, the guard checks them. If any value is non-finite it finds the streams that hold one,
// zeroes those streams' recurrent state and sensitivities, and tells the loop to drop the step's
// gradient (no update, nothing accumulated). With "raise" the loop then stops after that step; with
// "skip" it goes on. Either way the learner stays consistent: weights and optimizer state are those
// before the step, the other streams have moved on by one step. An update that would make a weight
// or the optimizer's state non-finite (an overflow in the optimizer itself) is undone from a copy
// taken before it and counted the same way, without resetting any stream. On a context that does
// not defer its checks, the guard carries bounds on the checked values and on what the last update
// left, and the update takes no copy when they prove it finite (update_bounds.hpp).
#pragma once

#include <algorithm>
#include <limits>
#include <utility>
#include <vector>

#include "rtrl/algo/optimizer_step.hpp"
#include "rtrl/algo/update_bounds.hpp"
#include "rtrl/array_ops.hpp"
#include "rtrl/nonfinite.hpp"

namespace rtrl {

// What the guard checks after a step: ranges that must be finite, blocks in which to find the
// offending streams, and blocks to zero in those streams. Filled anew each step (the pointers of a
// step may move); the vectors keep their capacity, so a step allocates nothing after the first.
template <class T>
struct StepCheck {
  std::vector<std::pair<const T*, index_t>> ranges;
  std::vector<StreamBlock<const T>> watched;
  std::vector<StreamBlock<T>> reset;
  void clear() {
    ranges.clear();
    watched.clear();
    reset.clear();
  }
};

template <class Ctx, class T>
class NonfiniteGuard {
 public:
  // params and grad: [param_count], the optimizer's state: [state_count] (what an update changes;
  // clipping scales grad in place).
  NonfiniteGuard(Ctx& ctx, NonfinitePolicy policy, index_t streams, NonfiniteEvents& events,
                 index_t param_count, index_t state_count)
      : ctx_(ctx), policy_(policy), streams_(streams), events_(events), params_(param_count),
        state_(state_count), backup_(ctx.template alloc<T>(2 * param_count + state_count)) {}

  // Checks the contiguous ranges (pointer, count) of step t. Returns true when all are finite; else
  // resets the offending streams (found in `watched`, reset in `reset`), records the step and
  // returns false: the caller drops the step's gradient.
  //   ranges: (const T*, count) pairs   watched: StreamBlock<const T>s   reset: StreamBlock<T>s
  template <class Ranges, class Watched, class Reset>
  bool step_ok(index_t t, const Ranges& ranges, const Watched& watched, const Reset& reset) {
    events_.steps_done = t + 1;
    bool finite;
    if constexpr (kBounds) {
      bounds_.grad = ctx_.template largest_magnitude<T>(ranges);  // a bound on every range, the gradient's too
      finite = bounds_.grad < std::numeric_limits<T>::infinity();
    } else {
      finite = ctx_.template all_finite<T>(ranges);
    }
    if (finite) return true;
    reset_ = offending_streams(watched);
    zero_streams(reset_, reset);
    record(t, reset_);
    return false;
  }

  // The gradient grad [count] changed after step_ok checked it (the other processes' parts were
  // added): its bound is taken again, so that the update may still go without its backup.
  void gradient_changed(const T* grad, index_t count) {
    if constexpr (kBounds) {
      const std::pair<const T*, index_t> range[1] = {{grad, count}};
      bounds_.grad = ctx_.template largest_magnitude<T>(range);
    }
  }

  // The streams the last step_ok that failed reset, in increasing order.
  const std::vector<index_t>& reset_streams() const { return reset_; }

  // Another process found step t not finite: the step is dropped here too, and the streams of `all`
  // (increasing) this process has not reset itself are reset in `reset`'s blocks. finite_here: this
  // process's own check passed (else step_ok has dropped the step and reset its streams already).
  template <class Reset>
  void adopt(index_t t, bool finite_here, const std::vector<index_t>& all, const Reset& reset) {
    const std::vector<index_t> none;
    const std::vector<index_t>& own = finite_here ? none : reset_;
    std::vector<index_t> extra;
    for (index_t s : all)
      if (std::find(own.begin(), own.end(), s) == own.end()) extra.push_back(s);
    zero_streams(extra, reset);
    if (finite_here) {
      record(t, all);
      return;
    }
    events_.reset_streams += index_t(extra.size());
    if (events_.first_step == t) events_.first_streams = all;
  }

  // update(backup, bounds) applies an optimizer step to params [param_count] and state
  // [state_count], and to grad [param_count] when clipping scales it (`clips`; else grad is only
  // read), copying what it changes into backup on the way (optimizer_step's layout) unless `bounds`
  // (null on a context that defers its checks) prove it finite, and returns whether the parameters
  // and the state it leaves are finite. Returns that; when false, puts back what the step changed
  // and records step t. The gradient it reads is the one the last step_ok checked (or see
  // gradient_changed).
  template <class Update>
  bool update_ok(index_t t, T* params, T* grad, T* state, bool clips, Update&& update) {
    T* backup = backup_.data();
    UpdateBounds<T>* bounds = kBounds ? &bounds_ : nullptr;
    const bool ok = update(backup, bounds);
    bounds_.grad = std::numeric_limits<T>::infinity();  // the next step brings its own gradient
    if (ok) return true;
    ctx_.for_each(params_, CopyInto<T>{backup, params});
    if (clips) ctx_.for_each(params_, CopyInto<T>{backup + params_, grad});
    if (state) ctx_.for_each(state_, CopyInto<T>{backup + 2 * params_, state});
    record(t, {});
    return false;
  }

  bool stop() const { return events_.stopped; }

 private:
  static constexpr bool kBounds = !Ctx::kDefersChecks;

  void record(index_t t, const std::vector<index_t>& streams) {
    if (events_.first_step < 0) {
      events_.first_step = t;
      events_.first_streams = streams;
    }
    events_.last_step = t;
    events_.skipped_steps += 1;
    events_.reset_streams += index_t(streams.size());
    events_.stopped = policy_ == NonfinitePolicy::raise;
  }

  template <class Reset>
  void zero_streams(const std::vector<index_t>& streams, const Reset& reset) {
    for (index_t s : streams)
      for (const StreamBlock<T>& b : reset) ctx_.for_each_2d(b.outer, b.width, ZeroStreamBlock<T>{b, s});
  }

  // The rare path: copies the watched blocks to the host and lists the streams with a non-finite
  // value in any of them, in increasing order.
  template <class Watched>
  std::vector<index_t> offending_streams(const Watched& watched) {
    std::vector<char> flagged(size_t(streams_), 0);
    std::vector<T> host;
    for (const StreamBlock<const T>& b : watched) {
      if (b.outer == 0 || b.width == 0) continue;
      const index_t extent = (b.outer - 1) * b.outer_stride + (streams_ - 1) * b.stream_stride + b.width;
      host.resize(size_t(extent));
      ctx_.copy_to_host(host.data(), b.data, extent);
      for (index_t s = 0; s < streams_; ++s)
        for (index_t o = 0; o < b.outer && !flagged[s]; ++o)
          for (index_t c = 0; c < b.width; ++c) {
            const T v = host[size_t(o * b.outer_stride + s * b.stream_stride + c)];
            if (!(v - v == T(0))) {
              flagged[s] = 1;
              break;
            }
          }
    }
    std::vector<index_t> bad;
    for (index_t s = 0; s < streams_; ++s)
      if (flagged[s]) bad.push_back(s);
    return bad;
  }

  Ctx& ctx_;
  NonfinitePolicy policy_;
  index_t streams_;
  NonfiniteEvents& events_;
  index_t params_, state_;
  std::vector<index_t> reset_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) backup_;
  UpdateBounds<T> bounds_;  // unknown (+inf) until step_ok and the first update
};

// One optimizer step, undone when it would leave a non-finite parameter; returns whether it was kept.
template <class Ctx, class T>
bool optimizer_step_if_finite(Ctx& ctx, const OptimizerConfig& opt, std::int64_t step, index_t count,
                              T* param, T* grad, T* state) {
  NonfiniteEvents events;
  NonfiniteGuard<Ctx, T> guard(ctx, NonfinitePolicy::skip, 1, events, count, opt.state_rows() * count);
  return guard.update_ok(0, param, grad, state, opt.max_grad_norm > 0.0, [&](T* backup, UpdateBounds<T>*) {
    return optimizer_step(ctx, opt, step, count, param, grad, state, static_cast<T*>(nullptr), backup);
  });
}

// BPTT's check (its step is a chunk): `run()` computes the chunk, adding its gradient into
// grad [count]; `declare(check)` names what must be finite besides that gradient, where to find the
// offending streams and what to reset in them. When anything is non-finite, grad is put back as it
// was before the chunk and the chunk is recorded as step 0 of `events`.
template <class T, class Ctx, class Run, class Declare>
void guarded_chunk(Ctx& ctx, NonfinitePolicy policy, index_t streams, NonfiniteEvents& events,
                   T* grad, index_t count, Run&& run, Declare&& declare) {
  auto before = ctx.template alloc<T>(count);
  ctx.for_each(count, CopyInto<T>{grad, before.data()});
  run();
  StepCheck<T> check;
  check.ranges.push_back({grad, count});
  declare(check);
  NonfiniteGuard<Ctx, T> guard(ctx, policy, streams, events, 0, 0);
  if (!guard.step_ok(0, check.ranges, check.watched, check.reset))
    ctx.for_each(count, CopyInto<T>{before.data(), grad});
}

}  // namespace rtrl
