// A pass over B streams in groups of kGroup consecutive streams, then the streams left one at a
// time: run(std::integral_constant<int, K>{}, first_stream, groups) with (kGroup, 0, B / kGroup)
// and then (1, kGroup (B / kGroup), B mod kGroup). A pass that adds the streams' terms to a sum in
// stream order gives the sums of one stream at a time either way.
#pragma once

#include <type_traits>

#include "rtrl/common.hpp"

namespace rtrl {

template <int kGroup, class Run>
void in_stream_groups(index_t B, const Run& run) {
  const index_t groups = B / kGroup, rest = B - groups * kGroup;
  if (groups > 0) run(std::integral_constant<int, kGroup>{}, index_t(0), groups);
  if (rest > 0) run(std::integral_constant<int, 1>{}, groups * kGroup, rest);
}

}  // namespace rtrl
