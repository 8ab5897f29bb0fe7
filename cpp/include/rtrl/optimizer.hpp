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

// SGD: v = momentum v + g (kMomentum); p -= lr v (p -= lr g without momentum). No branch inside, so
// that the loop over parameters vectorises.
//   param, grad: [count]   velocity: [count] (kMomentum) or unused
template <class T, bool kMomentum>
struct SgdUpdate {
  T lr, momentum;
  T* param;
  const T* grad;
  T* velocity;
  RTRL_HD void operator()(index_t i) const {
    T step = grad[i];
    if constexpr (kMomentum) {
      step = momentum * velocity[i] + step;
      velocity[i] = step;
    }
    param[i] -= lr * step;
  }
};

// Adam with bias correction at step t (t >= 1):
//   m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  p -= lr / c1 * m / (sqrt(v) / sqrt(c2) + eps),
//   c1 = 1 - b1^t, c2 = 1 - b2^t; step_size = lr / c1 and sqrt_c2 = sqrt(c2), in T, are the caller's
//   (adam_update), so that the loop divides and takes a root once per element, not per use.
//   param, grad, m, v: [count]
template <class T>
struct AdamUpdate {
  static constexpr index_t kItemCost = 8;  // a square root and two divisions (item_cost.hpp)
  T beta1, beta2, eps, step_size, sqrt_c2;
  T* param;
  const T* grad;
  T* m;
  T* v;
  RTRL_HD void operator()(index_t i) const {
    const T g = grad[i];
    const T m_new = beta1 * m[i] + (T(1) - beta1) * g;
    const T v_new = beta2 * v[i] + (T(1) - beta2) * g * g;
    m[i] = m_new;
    v[i] = v_new;
    const T denom = math::sqrt(v_new) / sqrt_c2 + eps;
    param[i] -= step_size * m_new / denom;
  }
};

// The Adam functor of update `step` (1-based) with torch's scalars: lr / c1 and sqrt(c2) in T.
template <class T>
AdamUpdate<T> adam_update(const OptimizerConfig& opt, std::int64_t step, T* param, const T* grad, T* state,
                          index_t count) {
  const T c1 = T(1.0 - std::pow(opt.beta1, double(step)));
  const T c2 = T(1.0 - std::pow(opt.beta2, double(step)));
  return AdamUpdate<T>{T(opt.beta1), T(opt.beta2), T(opt.eps), T(opt.lr) / c1, math::sqrt(c2),
                       param, grad, state, state + count};
}

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
