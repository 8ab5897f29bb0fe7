// Parameter updates applied natively after a gradient is known (PyTorch's update rules).
#pragma once

#include <cmath>
#include <cstdint>

#include "rtrl/math.hpp"

namespace rtrl {

enum class OptimizerKind : int { none = 0, sgd = 1, adam = 2 };

struct OptimizerConfig {
  OptimizerKind kind = OptimizerKind::none;
  double lr = 0.0;
  double momentum = 0.0;  // SGD
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // Adam
  double max_grad_norm = 0.0;  // > 0: scale the gradient to at most this 2-norm before the update

  // Rows of per-parameter state the optimizer keeps: SGD with momentum 1 (velocity), Adam 2 (m, v).
  int state_rows() const {
    if (kind == OptimizerKind::adam) return 2;
    if (kind == OptimizerKind::sgd && momentum != 0.0) return 1;
    return 0;
  }
};

// SGD: v = momentum v + g (when momentum != 0); p -= lr v.
//   param, grad: [count]   velocity: [count] or null when momentum == 0
template <class T>
struct SgdUpdate {
  T lr, momentum;
  T* param;
  const T* grad;
  T* velocity;
  RTRL_HD void operator()(index_t i) const {
    T step = grad[i];
    if (velocity != nullptr) {
      step = momentum * velocity[i] + step;
      velocity[i] = step;
    }
    param[i] -= lr * step;
  }
};

// Adam with bias correction at step t (t >= 1):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps),
//   c1 = 1 - b1^t, c2 = 1 - b2^t.     param, grad, m, v: [count]
template <class T>
struct AdamUpdate {
  T lr, beta1, beta2, eps, correction1, correction2;
  T* param;
  const T* grad;
  T* m;
  T* v;
  RTRL_HD void operator()(index_t i) const {
    const T g = grad[i];
    m[i] = beta1 * m[i] + (T(1) - beta1) * g;
    v[i] = beta2 * v[i] + (T(1) - beta2) * g * g;
    const T denom = math::sqrt(v[i]) / math::sqrt(correction2) + eps;
    param[i] -= (lr / correction1) * m[i] / denom;
  }
};

// PyTorch's clip_grad_norm_: grad *= max_norm / (norm + 1e-6) when that factor is below 1.
template <class T>
struct ClipToNorm {
  T max_norm;
  const T* norm;
  T* grad;
  RTRL_HD void operator()(index_t i) const {
    const T factor = max_norm / (norm[0] + T(1e-6));
    if (factor < T(1)) grad[i] *= factor;
  }
};

}  // namespace rtrl
