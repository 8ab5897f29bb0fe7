// Functors for ctx.for_each_serial_k may split their work in two: row(s, k) computes what depends
// only on (stream, row) once, and f(row, s, k, c) the per-column part. Both backends call row() for
// each (s, k) and then the column loop; a functor without row() is called as f(s, k, c).
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

}  // namespace rtrl
