// The optimizer update as a loop over parameters on a backend context.
#pragma once

#include <cmath>
#include <cstdint>

#include "rtrl/array_ops.hpp"
#include "rtrl/optimizer.hpp"

namespace rtrl {

// What an update changes, copied on its way so that the update can be undone: param at 0, grad at
// count (when clipping scales it), the state rows from 2 count.   backup: [(2 + state_rows) count]
//
// The update of element i with its backup, and whether what it leaves is finite: one pass over the
// parameters (ctx.for_each_all), so that the copy and the check read nothing a second time.
template <class T, int kStateRows, class Update>
struct BackedUpUpdate {
  static constexpr int kRows = kStateRows > 0 ? kStateRows : 1;
  Update update;
  T* param;
  T* param_backup;
  T* state[kRows];  // each row's start, so that every access is contiguous (no gathers)
  T* state_backup[kRows];
  RTRL_HD bool operator()(index_t i) const {
    param_backup[i] = param[i];
    for (int r = 0; r < kStateRows; ++r) state_backup[r][i] = state[r][i];
    update(i);
    bool finite = param[i] - param[i] == T(0);
    for (int r = 0; r < kStateRows; ++r) finite &= state[r][i] - state[r][i] == T(0);
    return finite;
  }
};

template <int kStateRows, class Ctx, class T, class Update>
bool update_backed_up(Ctx& ctx, index_t count, const Update& update, T* param, T* state, T* backup) {
  if (!backup) {
    ctx.for_each(count, update);
    return true;
  }
  BackedUpUpdate<T, kStateRows, Update> f{update, param, backup, {}, {}};
  for (int r = 0; r < kStateRows; ++r) {
    f.state[r] = state + r * count;
    f.state_backup[r] = backup + (2 + r) * count;
  }
  return ctx.for_each_all(count, f);
}

// One optimizer step over `count` parameters. `step` is the 1-based index of this update (Adam).
// With max_grad_norm > 0 the gradient is first clipped in place, as torch's clip_grad_norm_ does.
// With a backup, what the step changes is copied there first (see BackedUpUpdate) and the step
// returns whether the parameters and the state it leaves are all finite; without one it returns true.
//   param, grad: [count]   state: [state_rows, count] or null   norm: [1] workspace, or null
//   (then allocated here: loops pass theirs, so that a step allocates nothing)
//   backup: [(2 + state_rows) count] or null
template <class Ctx, class T>
bool optimizer_step(Ctx& ctx, const OptimizerConfig& opt, std::int64_t step, index_t count,
                    T* param, T* grad, T* state, T* norm = nullptr, T* backup = nullptr) {
  if (opt.kind == OptimizerKind::none) return true;
  if (opt.max_grad_norm > 0.0) {
    auto own = ctx.template alloc<T>(norm ? 0 : 1);
    if (!norm) norm = own.data();
    if (backup) ctx.for_each(count, CopyInto<T>{grad, backup + count});
    ctx.norm2(count, grad, norm);
    ctx.for_each(count, ClipToNorm<T>{T(opt.max_grad_norm), norm, grad});
  }
  if (opt.kind == OptimizerKind::adam)
    return update_backed_up<2>(ctx, count, adam_update(opt, step, param, grad, state, count), param, state,
                               backup);
  if (opt.momentum != 0.0)
    return update_backed_up<1>(ctx, count, SgdUpdate<T, true>{T(opt.lr), T(opt.momentum), param, grad, state},
                               param, state, backup);
  return update_backed_up<0>(ctx, count, SgdUpdate<T, false>{T(opt.lr), T(0), param, grad, nullptr}, param,
                             state, backup);
}

}  // namespace rtrl
