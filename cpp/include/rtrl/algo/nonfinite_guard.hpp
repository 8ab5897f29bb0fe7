// The per-step non-finite check of the RTRL time loops (on_nonfinite="raise" | "skip").
//
// After a step has computed its new state and its gradient, and before the gradient is applied or
// accumulated, the guard checks them. If any value is non-finite it finds the streams that hold one,
// zeroes those streams' recurrent state and sensitivities, and tells the loop to drop the step's
// gradient (no update, nothing accumulated). With "raise" the loop then stops after that step; with
// "skip" it goes on. Either way the learner stays consistent: weights and optimizer state are those
// before the step, the other streams have moved on by one step.
#pragma once

#include <initializer_list>
#include <utility>
#include <vector>

#include "rtrl/array_ops.hpp"
#include "rtrl/nonfinite.hpp"

namespace rtrl {

template <class Ctx, class T>
class NonfiniteGuard {
 public:
  NonfiniteGuard(Ctx& ctx, NonfinitePolicy policy, index_t streams, NonfiniteEvents& events)
      : ctx_(ctx), policy_(policy), streams_(streams), events_(events) {}

  // Checks the contiguous ranges (pointer, count) of step t. Returns true when all are finite; else
  // resets the offending streams (found in `watched`, reset in `reset`), records the step and
  // returns false: the caller drops the step's gradient.
  bool step_ok(index_t t, std::initializer_list<std::pair<const T*, index_t>> ranges,
               std::initializer_list<StreamBlock<const T>> watched,
               std::initializer_list<StreamBlock<T>> reset) {
    bool ok = true;
    for (const auto& r : ranges) ok = ok && ctx_.all_finite(r.first, r.second);
    events_.steps_done = t + 1;
    if (ok) return true;
    const std::vector<index_t> bad = offending_streams(watched);
    for (index_t s : bad)
      for (const StreamBlock<T>& b : reset) ctx_.for_each_2d(b.outer, b.width, ZeroStreamBlock<T>{b, s});
    if (events_.first_step < 0) {
      events_.first_step = t;
      events_.first_streams = bad;
    }
    events_.last_step = t;
    events_.skipped_steps += 1;
    events_.reset_streams += index_t(bad.size());
    events_.stopped = policy_ == NonfinitePolicy::raise;
    return false;
  }

  bool stop() const { return events_.stopped; }

 private:
  // The rare path: copies the watched blocks to the host and lists the streams with a non-finite
  // value in any of them, in increasing order.
  std::vector<index_t> offending_streams(std::initializer_list<StreamBlock<const T>> watched) {
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
};

}  // namespace rtrl
