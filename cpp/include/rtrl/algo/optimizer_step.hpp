// The optimizer update as a loop over parameters on a backend context.
#pragma once

#include <cmath>
#include <cstdint>

#include "rtrl/optimizer.hpp"

namespace rtrl {

// One optimizer step over `count` parameters. `step` is the 1-based index of this update (Adam).
// With max_grad_norm > 0 the gradient is first clipped in place, as torch's clip_grad_norm_ does.
//   param, grad: [count]   state: [state_rows, count] or null   norm: [1] workspace, or null
//   (then allocated here: loops pass theirs, so that a step allocates nothing)
template <class Ctx, class T>
void optimizer_step(Ctx& ctx, const OptimizerConfig& opt, std::int64_t step, index_t count,
                    T* param, T* grad, T* state, T* norm = nullptr) {
  if (opt.kind == OptimizerKind::none) return;
  if (opt.max_grad_norm > 0.0) {
    auto own = ctx.template alloc<T>(norm ? 0 : 1);
    if (!norm) norm = own.data();
    ctx.norm2(count, grad, norm);
    ctx.for_each(count, ClipToNorm<T>{T(opt.max_grad_norm), norm, grad});
  }
  switch (opt.kind) {
    case OptimizerKind::none:
      return;
    case OptimizerKind::sgd:
      ctx.for_each(count, SgdUpdate<T>{T(opt.lr), T(opt.momentum), param, grad,
                                       opt.momentum != 0.0 ? state : nullptr});
      return;
    case OptimizerKind::adam: {
      const double c1 = 1.0 - std::pow(opt.beta1, double(step));
      const double c2 = 1.0 - std::pow(opt.beta2, double(step));
      ctx.for_each(count, AdamUpdate<T>{T(opt.lr), T(opt.beta1), T(opt.beta2), T(opt.eps), T(c1),
                                        T(c2), param, grad, state, state + count});
      return;
    }
  }
}

}  // namespace rtrl
