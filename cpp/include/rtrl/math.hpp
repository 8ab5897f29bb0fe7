// Scalar math with one spelling for host and device code, float and double.
#pragma once

#include <cmath>

#include "rtrl/common.hpp"

namespace rtrl {
namespace math {

RTRL_HD float exp(float x) { return ::expf(x); }
RTRL_HD double exp(double x) { return ::exp(x); }
RTRL_HD float tanh(float x) { return ::tanhf(x); }
RTRL_HD double tanh(double x) { return ::tanh(x); }
RTRL_HD float sqrt(float x) { return ::sqrtf(x); }
RTRL_HD double sqrt(double x) { return ::sqrt(x); }

template <class T>
RTRL_HD T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

}  // namespace math
}  // namespace rtrl
