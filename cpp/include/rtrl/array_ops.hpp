// Element-wise functors over flat arrays, shared by the algorithms.
#pragma once

#include "rtrl/common.hpp"

namespace rtrl {

template <class T>
struct Fill {
  T value;
  T* out;
  RTRL_HD void operator()(index_t i) const { out[i] = value; }
};

// out[i] += in[i]: a step's gradient committed to the accumulated one.
template <class T>
struct AddInto {
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t i) const { out[i] += in[i]; }
};

template <class T>
struct CopyInto {
  const T* in;
  T* out;
  RTRL_HD void operator()(index_t i) const { out[i] = in[i]; }
};

}  // namespace rtrl
