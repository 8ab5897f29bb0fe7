// Types of the non-finite policy of the RTRL loops (algo/nonfinite_guard.hpp): the policy, what a
// run reports, and the per-stream view of an array used to find and reset offending streams.
#pragma once

#include <functional>
#include <vector>

#include "rtrl/common.hpp"

namespace rtrl {

enum class NonfinitePolicy { raise, skip };

// The loop's link to the other processes of a distributed learner (DESIGN §12), called on the host
// with host memory after each step's non-finite check: combine(grad, count, finite, streams)
// combines the step's gradient [count] with the other processes' in place, before the optimizer
// (grad is null at a step of epoch mode: the call only agrees on the verdict), and returns whether
// the step was finite on all of them. `finite` is this process's verdict and `streams` the streams
// it reset (empty when finite); on return `streams` holds the streams every process resets — the
// union over the processes when they run the same streams (column-sharded RTRL), this process's
// own when each runs its own. each_step: also called at the steps of epoch mode. Empty: one process.
struct GradientCombiner {
  std::function<bool(void* grad, index_t count, bool finite, std::vector<index_t>& streams)> combine;
  bool each_step = false;
  explicit operator bool() const { return bool(combine); }
};

// What a run's guard saw; the first offending step (relative to the call) and its streams.
struct NonfiniteEvents {
  index_t steps_done = 0;       // steps processed, the offending one included
  index_t skipped_steps = 0;    // steps whose gradient was dropped
  index_t reset_streams = 0;    // stream resets, summed over those steps
  index_t first_step = -1;      // -1: none
  std::vector<index_t> first_streams;  // empty when only the sum over streams overflowed
  index_t last_step = -1;
  bool stopped = false;         // "raise": the loop stopped after first_step
};

// The values of one stream s inside an array: data[o * outer_stride + s * stream_stride + c] for
// o in [0, outer), c in [0, width).
template <class T>
struct StreamBlock {
  T* data;
  index_t outer;
  index_t outer_stride;
  index_t stream_stride;
  index_t width;
};

// A stream's block of a StreamBlock set to zero.   called as f(o, c)
template <class T>
struct ZeroStreamBlock {
  StreamBlock<T> b;
  index_t stream;
  RTRL_HD void operator()(index_t o, index_t c) const {
    b.data[o * b.outer_stride + stream * b.stream_stride + c] = T(0);
  }
};

}  // namespace rtrl
