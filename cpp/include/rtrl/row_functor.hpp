// Functors for ctx.for_each_serial_k may split their work in two: row(s, k) computes what depends
// only on (stream, row) once, and f(row, s, k, c) the per-column part. Both backends call row() for
// each (s, k) and then the column loop; a functor without row() is called as f(s, k, c).
// A functor may also sum a value over each row: f(row, s, k, c) returns v_c, and finish(s, k, sum)
// receives sum_c v_c, summed in kRowLanes lanes (row_lane_sum); the range must then hold whole rows.
// The CPU sums the returned values as it goes; the GPU, which cannot keep them, calls
// finish(s, k, f.row_sum(s, k)) in a second pass over (s, k), row_sum taking the same sum from what
// the pass stored — the same bits, as long as row_sum adds the same v_c in row_lane_sum's order.
#pragma once

#include <type_traits>
#include <utility>

#include "rtrl/common.hpp"

namespace rtrl {

template <class F, class = void>
struct HasRow : std::false_type {};

template <class F>
struct HasRow<F, std::void_t<decltype(std::declval<const F&>().row(index_t(), index_t()))>>
    : std::true_type {};

template <class F, class = void>
struct HasFinish : std::false_type {};

template <class F>
struct HasFinish<F, std::void_t<decltype(std::declval<const F&>().row_sum(index_t(), index_t()))>>
    : std::true_type {};

// A row's sum in kRowLanes partial sums (lane j: the columns c = j mod kRowLanes, in increasing c),
// combined in increasing j: the same for any thread count and vector width, and wide enough that the
// lanes' additions do not wait on each other. value(c) gives v_c.
constexpr index_t kRowLanes = 32;
template <class T, class Value>
RTRL_HD T row_lane_sum(index_t width, const Value& value) {
  T lane[kRowLanes] = {};
  index_t c = 0;
  for (; c + kRowLanes <= width; c += kRowLanes)
    for (index_t j = 0; j < kRowLanes; ++j) lane[j] += value(c + j);
  for (index_t j = 0; c + j < width; ++j) lane[j] += value(c + j);
  T sum = T(0);
  for (index_t j = 0; j < kRowLanes; ++j) sum += lane[j];
  return sum;
}

// f.finish(s0 + s, k, f.row_sum(s0 + s, k)) as f(s, k) of a for_each_2d over (rows, depth): the
// GPU's second pass.
template <class F>
struct FinishRows {
  F f;
  index_t s0;
  RTRL_HD void operator()(index_t s, index_t k) const { f.finish(s0 + s, k, f.row_sum(s0 + s, k)); }
};

}  // namespace rtrl
