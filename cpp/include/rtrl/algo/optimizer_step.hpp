// The optimizer update as a loop over parameters on a backend context.
#pragma once

#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <type_traits>

#include "rtrl/algo/update_bounds.hpp"
#include "rtrl/array_ops.hpp"
#include "rtrl/item_cost.hpp"
#include "rtrl/optimizer.hpp"

namespace rtrl {

// What an update changes, copied on its way so that the update can be undone: param at 0, grad at
// count (when clipping scales it), the state rows from 2 count.   backup: [(2 + state_rows) count]
//
// The update of element i, with its backup when kBackup, returning the bits of the largest value it
// leaves (float_bits.hpp): the magnitudes of the parameter and the state rows; when kNonnegativeLast
// (Adam's v) a negative last row, or NaN, gives all-ones bits (-0 is 0). One pass over the
// parameters, so that the copy, the check and the bound (update_bounds.hpp) read nothing twice.
template <class T, int kStateRows, bool kNonnegativeLast, bool kBackup, class Update>
struct GuardedUpdate {
  static constexpr int kRows = kStateRows > 0 ? kStateRows : 1;
  static constexpr index_t kItemCost = ItemCost<Update>::value;
  Update update;
  T* param;
  T* param_backup;
  T* state[kRows];  // each row's start, so that every access is contiguous (no gathers)
  T* state_backup[kRows];
  RTRL_HD FloatBits<T> operator()(index_t i) const {
    if constexpr (kBackup) {
      param_backup[i] = param[i];
      for (int r = 0; r < kStateRows; ++r) state_backup[r][i] = state[r][i];
    }
    update(i);
    FloatBits<T> largest = magnitude_bits(param[i]);
    for (int r = 0; r < kStateRows; ++r) {
      const T value = state[r][i];
      FloatBits<T> bits = magnitude_bits(value);
      if (kNonnegativeLast && r == kStateRows - 1 && !(value >= T(0))) bits = ~FloatBits<T>(0);
      largest = largest > bits ? largest : bits;
    }
    return largest;
  }
};

// Whether what a GuardedUpdate's item leaves is finite (ctx.for_each_all).
template <class T, class Guarded>
struct LeavesFinite {
  static constexpr index_t kItemCost = ItemCost<Guarded>::value;
  Guarded guarded;
  RTRL_HD bool operator()(index_t i) const { return guarded(i) < finite_limit_bits<T>(); }
};

// The update over count elements (see optimizer_step for backup and bounds); returns whether what
// it leaves is finite (always true without a backup or bounds: nothing was checked).
template <int kStateRows, bool kNonnegativeLast, class Ctx, class T, class Update>
bool update_guarded(Ctx& ctx, index_t count, const Update& update, T* param, T* state, T* backup,
                    UpdateBounds<T>* bounds) {
  auto guarded = [&](auto backed_up) {
    GuardedUpdate<T, kStateRows, kNonnegativeLast, decltype(backed_up)::value, Update> f{
        update, param, backup, {}, {}};
    for (int r = 0; r < kStateRows; ++r) {
      f.state[r] = state + r * count;
      f.state_backup[r] = backup ? backup + (2 + r) * count : nullptr;
    }
    return f;
  };
  if constexpr (!Ctx::kDefersChecks) {
    if (bounds) {
      const FloatBits<T> largest = backup ? ctx.for_each_max(count, guarded(std::true_type()))
                                          : ctx.for_each_max(count, guarded(std::false_type()));
      if (largest >= finite_limit_bits<T>()) {
        if (!backup) throw std::logic_error("rtrl: an update its bounds proved finite left a non-finite value");
        return false;
      }
      bounds->state = magnitude_from_bits<T>(largest);
      return true;
    }
  }
  if (!backup) {
    ctx.for_each(count, update);
    return true;
  }
  using Guarded = decltype(guarded(std::true_type()));
  return ctx.for_each_all(count, LeavesFinite<T, Guarded>{guarded(std::true_type())});
}

// One optimizer step over `count` parameters. `step` is the 1-based index of this update (Adam).
// With max_grad_norm > 0 the gradient is first clipped in place, as torch's clip_grad_norm_ does.
// With a backup, what the step changes is copied there first (see GuardedUpdate) and the step
// returns whether the parameters and the state it leaves are all finite; without one it returns true.
// With bounds (a context that does not defer its checks), the step takes no backup when the bounds
// prove it finite (update_bounds.hpp), and when it returns true bounds->state bounds what it left.
//   param, grad: [count]   state: [state_rows, count] or null   norm: [1] workspace, or null
//   (then allocated here: loops pass theirs, so that a step allocates nothing)
//   backup: [(2 + state_rows) count] or null
template <class Ctx, class T>
bool optimizer_step(Ctx& ctx, const OptimizerConfig& opt, std::int64_t step, index_t count,
                    T* param, T* grad, T* state, T* norm = nullptr, T* backup = nullptr,
                    UpdateBounds<T>* bounds = nullptr) {
  if (opt.kind == OptimizerKind::none) return true;
  if (bounds && update_stays_finite(opt, step, *bounds)) backup = nullptr;
  if (opt.max_grad_norm > 0.0) {
    auto own = ctx.template alloc<T>(norm ? 0 : 1);
    if (!norm) norm = own.data();
    if (backup) ctx.for_each(count, CopyInto<T>{grad, backup + count});
    ctx.norm2(count, grad, norm);
    ctx.for_each(count, ClipToNorm<T>{T(opt.max_grad_norm), norm, grad});
  }
  if (opt.kind == OptimizerKind::adam)
    return update_guarded<2, true>(ctx, count, adam_update(opt, step, param, grad, state, count), param,
                                   state, backup, bounds);
  if (opt.momentum != 0.0)
    return update_guarded<1, false>(ctx, count,
                                    SgdUpdate<T, true>{T(opt.lr), T(opt.momentum), param, grad, state}, param,
                                    state, backup, bounds);
  return update_guarded<0, false>(ctx, count, SgdUpdate<T, false>{T(opt.lr), T(0), param, grad, nullptr},
                                  param, state, backup, bounds);
}

}  // namespace rtrl
