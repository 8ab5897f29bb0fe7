// The linear readout y = W_out h + b_out and its losses, shared by RTRL and BPTT on RecurrentNet.
//   mse:            J = 1/2 sum_o (d_o - y_o)^2 over the outputs with a target (NaN = none)
//   cross_entropy:  J = -log softmax(y)[c] for the class c of the row (-1 = none)
// Rows r are (time, stream) pairs or, within a step, streams.
#pragma once

#include <limits>

#include "rtrl/math.hpp"

namespace rtrl {

enum class LossKind : int { mse = 0, cross_entropy = 1 };

// Adds b_out to y[r, :] and writes the row's loss and delta[r, :] = scale dJ/dy.
//   y, delta: [R, O]   target: [R, O] (mse) or [R] class indices as values (cross_entropy)
//   row_loss: [R]      item: r
template <class T>
struct ReadoutLoss {
  index_t outputs;
  LossKind loss;
  T scale;
  const T* b_out;
  const T* target;
  T* y;
  T* delta;
  T* row_loss;
  RTRL_HD void operator()(index_t r) const {
    const index_t O = outputs;
    T* yr = y + r * O;
    T* dr = delta + r * O;
    for (index_t o = 0; o < O; ++o) yr[o] += b_out[o];
    if (loss == LossKind::mse) {
      T sum = T(0);
      for (index_t o = 0; o < O; ++o) {
        const T d = target != nullptr ? target[r * O + o] : T(0);
        const bool has = target != nullptr && !is_nan(d);
        const T e = has ? d - yr[o] : T(0);
        sum += T(0.5) * e * e;
        dr[o] = -scale * e;
      }
      row_loss[r] = sum;
      return;
    }
    const T c = target != nullptr ? target[r] : T(-1);
    if (!(c >= T(0))) {  // -1 (or no targets): no loss, no gradient
      for (index_t o = 0; o < O; ++o) dr[o] = T(0);
      row_loss[r] = T(0);
      return;
    }
    if (!(c < T(O))) {  // a class past the outputs (refused before any launch): flag the row, read nothing
      const T nan = std::numeric_limits<T>::quiet_NaN();
      for (index_t o = 0; o < O; ++o) dr[o] = nan;
      row_loss[r] = nan;
      return;
    }
    const index_t cls = index_t(c);
    T top = yr[0];
    for (index_t o = 1; o < O; ++o) top = yr[o] > top ? yr[o] : top;
    T total = T(0);
    for (index_t o = 0; o < O; ++o) total += math::exp(yr[o] - top);
    const T log_total = math::log(total);
    for (index_t o = 0; o < O; ++o) {
      const T p = math::exp(yr[o] - top - log_total);
      dr[o] = scale * (p - (o == cls ? T(1) : T(0)));
    }
    row_loss[r] = top + log_total - yr[cls];
  }
};

// True when c is a usable cross-entropy target for `classes` outputs: -1 (no target) or an integer
// in [0, classes). The bindings refuse any other value before a kernel runs (find_bad_class).
template <class T>
RTRL_HD bool valid_class(T c, index_t classes) {
  return c == T(-1) || (c >= T(0) && c < T(classes) && c == T(index_t(c)));
}

template <class T>
struct ReadoutArgs {
  index_t rows;      // R
  index_t hidden;    // H
  index_t outputs;   // O
  index_t per_step;  // rows per time step (B)
  LossKind loss;
  T scale;           // reduction over streams: 1/B (mean) or 1 (sum)
  const T* h;        // [R, ldh]
  index_t ldh;
  const T* w_out;    // [O, H]
  const T* b_out;    // [O]
  const T* target;   // [R, O] (mse) or [R] (cross_entropy) or null
  T* y;              // [R, O]  outputs
  T* step_loss;      // [R / B]
  T* delta_h;        // [R, H]  dL/dh, or null
  T* grad_w_out;     // [O, H]
  T* grad_b_out;     // [O]
  bool accumulate;   // add to the readout gradients (else overwrite)
  T* scratch;        // [R O + R] workspace, or null (then allocated per call)
  const T* feedback = nullptr;  // [O, H] what carries dL/dy to delta_h in w_out's place (e-prop's
                                // random feedback), or null: w_out
};

}  // namespace rtrl
