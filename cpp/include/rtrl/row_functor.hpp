// Functors for ctx.for_each_serial_k may split their work in two: row(s, k) computes what depends
// only on (stream, row) once, and f(row, s, k, c) the per-column part. Both backends call row() for
// each (s, k) and then the column loop; a functor without row() is called as f(s, k, c).
// A functor may also have finish(s, k): called once for each (s, k) after f has run on all of row s's
// columns for that k (the range must then hold whole rows). The CPU calls it right after the row, on
// the thread that ran it, while the row is in cache; the GPU in a second pass over (s, k).
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
struct HasFinish<F, std::void_t<decltype(std::declval<const F&>().finish(index_t(), index_t()))>>
    : std::true_type {};

// f.finish(s0 + s, k) as f(s, k) of a for_each_2d over (rows, depth): the GPU's second pass.
template <class F>
struct FinishRows {
  F f;
  index_t s0;
  RTRL_HD void operator()(index_t s, index_t k) const { f.finish(s0 + s, k); }
};

}  // namespace rtrl
