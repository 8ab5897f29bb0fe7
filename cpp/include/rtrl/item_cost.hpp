// A functor whose items cost far more than a few flops (the cells' pointwise steps, with their
// exponentials; Adam's square root and divisions; a trace column that moves several streams)
// declares `static constexpr index_t kItemCost` (in units of a cheap item); the CPU context shares
// a loop among threads from fewer items accordingly (for_each_serial_k: per column and depth).
// Default 1.
#pragma once

#include <type_traits>

#include "rtrl/common.hpp"

namespace rtrl {

template <class F, class = void>
struct ItemCost : std::integral_constant<index_t, 1> {};

template <class F>
struct ItemCost<F, std::void_t<decltype(F::kItemCost)>> : std::integral_constant<index_t, F::kItemCost> {};

}  // namespace rtrl
