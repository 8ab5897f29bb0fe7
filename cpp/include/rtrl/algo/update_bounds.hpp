// Bounds that prove an optimizer update finite before it runs (the CPU's online loop, DESIGN §8).
//
// The non-finite guard undoes an update that overflows from a copy it takes on the update's way
// (nonfinite_guard.hpp): three more arrays written per step, about as much memory traffic again
// as Adam's own. An update whose inputs are finite can only overflow when they are huge, so the
// loop carries two bounds instead and skips the copy when they prove the update finite:
//   grad:  the largest magnitude of the step's gradient (its finiteness check computes it);
//   state: the largest magnitude of every parameter and optimizer state the update reads (a
//          negative Adam v counts as unbounded: its root would be NaN), computed by the previous
//          update's own pass over them.
// update_stays_finite bounds each operation of the update (optimizer.hpp) in real arithmetic and asks
// for a margin of 16 below the largest T, which covers every rounding on the way. A bound that is
// unknown is +inf, which proves nothing: the first update of each call takes the copy.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>

#include "rtrl/float_bits.hpp"
#include "rtrl/optimizer.hpp"

namespace rtrl {

template <class T>
struct UpdateBounds {
  T state = std::numeric_limits<T>::infinity();
  T grad = std::numeric_limits<T>::infinity();
};

// True when update `step` (1-based) of `opt`, reading a gradient and a state within `bounds`, leaves
// every parameter and state finite. Conservative: false whenever a bound or a scalar of the update
// could let an operation overflow, divide by zero or take the root of a negative.
template <class T>
bool update_stays_finite(const OptimizerConfig& opt, std::int64_t step, const UpdateBounds<T>& bounds) {
  const double limit = double(std::numeric_limits<T>::max()) / 16;
  const double s = double(bounds.state), g = double(bounds.grad);
  if (!(s < limit && g < limit)) return false;  // NaN compares false too
  if (opt.kind == OptimizerKind::sgd) {
    const double lr = std::fabs(double(T(opt.lr)));
    if (opt.momentum == 0.0) return s + lr * g < limit;  // p - lr g
    const double velocity = std::fabs(double(T(opt.momentum))) * s + g;  // momentum v + g
    return velocity < limit && s + lr * velocity < limit;
  }
  if (opt.kind != OptimizerKind::adam) return opt.kind == OptimizerKind::none;
  const AdamUpdate<T> a = adam_update<T>(opt, step, nullptr, nullptr, nullptr, 0);
  const double b1 = double(a.beta1), b2 = double(a.beta2), eps = double(a.eps);
  const double sqrt_c2 = double(a.sqrt_c2), step_size = std::fabs(double(a.step_size));
  // m and v are convex combinations (betas in [0, 1]), v of non-negative terms; the denominator
  // sqrt(v) / sqrt_c2 + eps is then at least eps. eps and sqrt_c2 must be normal numbers: where the
  // CPU flushes subnormal results to zero, sqrt(v) / sqrt_c2 + eps with a subnormal eps is 0.
  constexpr double smallest = double(std::numeric_limits<T>::min());
  if (!(b1 >= 0 && b1 <= 1 && b2 >= 0 && b2 <= 1 && eps >= smallest && eps < limit && sqrt_c2 >= smallest))
    return false;
  const double m = std::fmax(s, g), v = std::fmax(s, g * g);
  const double root = std::sqrt(v) / sqrt_c2;
  const double update = step_size * m;  // step_size m, then divided by the denominator
  return v < limit && root < limit && update < limit && s + update / eps < limit;
}

}  // namespace rtrl
