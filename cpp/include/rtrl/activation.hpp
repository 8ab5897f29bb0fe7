// Unit nonlinearities of the fully recurrent network and their derivatives.
#pragma once

#include "rtrl/math.hpp"

namespace rtrl {

enum class Activation : int { logistic = 0, tanh = 1 };

template <class T>
RTRL_HD T activate(Activation a, T s) {
  return a == Activation::logistic ? math::sigmoid(s) : math::tanh(s);
}

// f'(s) written in terms of y = f(s): logistic y(1-y), tanh 1-y^2.
template <class T>
RTRL_HD T activation_slope(Activation a, T y) {
  return a == Activation::logistic ? y * (T(1) - y) : T(1) - y * y;
}

}  // namespace rtrl
