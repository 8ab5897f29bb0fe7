// Williams & Zipser (1989) fully recurrent network: sizes, buffers and the per-element math shared by
// the CPU and CUDA backends.
//
// Notation (DESIGN §3.1): n units, m inputs, b in {0, 1} bias line, L = m + b + n, N = n * L weights,
// B streams, O visible units (the first O units). z(t) = [x(t); 1; y(t)].
// Sensitivities of all streams form one row-major matrix P[n, B * N]:
//   P[k, s * N + i * L + j] = d y_k / d w_ij for stream s,
// so that the propagation W_U P is a single GEMM for all streams. A process that carries only the
// weight rows [i0, i0 + n_c) (column-sharded RTRL) holds P[n, B * N_c], N_c = n_c L, with i - i0 in
// place of i.
#pragma once

#include <cstdint>

#include "rtrl/activation.hpp"
#include "rtrl/common.hpp"
#include "rtrl/nonfinite.hpp"
#include "rtrl/optimizer.hpp"

namespace rtrl {

struct FullyRecurrentDims {
  index_t units = 0;    // n
  index_t inputs = 0;   // m
  index_t bias = 1;     // b, 0 or 1
  index_t outputs = 0;  // O <= n
  index_t batch = 1;    // B
  // The weight rows whose sensitivities this process carries (column-sharded RTRL, DESIGN §12):
  // [shard_row0, shard_row0 + carried_rows()); shard_rows < 0: all of them.
  index_t shard_row0 = 0;
  index_t shard_rows = -1;

  RTRL_HD index_t width() const { return inputs + bias + units; }     // L
  RTRL_HD index_t n_weights() const { return units * width(); }       // N
  RTRL_HD index_t recurrent_offset() const { return inputs + bias; }  // first column of W_U in W
  RTRL_HD index_t carried_rows() const { return shard_rows < 0 ? units : shard_rows; }
  RTRL_HD index_t carried() const { return carried_rows() * width(); }  // N_c, P's columns per stream
};

template <class T>
struct FullyRecurrentState {
  T* weight;     // [n, L]
  T* y;          // [B, n]   unit values the next step feeds back (after forcing)
  T* P;          // [n, B N] sensitivities, updated in place
  T* grad;       // [n, L]   accumulated gradient (real-time mode: the last step's gradient)
  T* opt_state;  // [optimizer state rows, n L] or null
};

template <class T>
struct FullyRecurrentSequence {
  index_t steps;     // T
  const T* x;        // [T, B, m]
  const T* target;   // [T, B, O] or null
  T* outputs;        // [T, B, O]
  T* loss;           // [T]
};

struct FullyRecurrentOptions {
  Activation activation = Activation::logistic;
  bool teacher_forcing = false;
  double loss_scale = 1.0;       // 1/B for reduction "mean", 1 for "sum"
  bool update_each_step = false; // real-time mode with an optimizer; else accumulate into grad
  OptimizerConfig optimizer;
  std::int64_t optimizer_step = 0;  // updates applied so far (Adam's t before this call)
  NonfinitePolicy on_nonfinite = NonfinitePolicy::raise;
  GradientCombiner combine_gradient;  // empty: one process
};

template <class T>
struct FullyRecurrentBpttState {
  const T* weight;  // [n, L]
  T* y;             // [B, n]  unit values carried into and out of the sequence
  T* grad;          // [n, L]  the sequence's gradient is added here
};

// Copies x(t) and the bias line into z(t).
//   x: [B, m]   z: [B, L]   item: (s, j) with j < m + b, flattened
template <class T>
struct LoadInputs {
  FullyRecurrentDims d;
  const T* x;
  T* z;
  RTRL_HD void operator()(index_t idx) const {
    const index_t head = d.inputs + d.bias;
    const index_t s = idx / head, j = idx % head;
    z[s * d.width() + j] = j < d.inputs ? x[s * d.inputs + j] : T(1);
  }
};

// From the pre-activations s(t), computes y(t+1), the slope f', the error against the target, whether
// the unit is forced, writes the (possibly forced) unit values into z(t+1) and the visible outputs.
//   pre: [B, n]   target: [B, O] or null (NaN = no target)   slope, error, keep, sq_error: [B, n]
//   z_next: [B, L]   outputs: [B, O] or null        item: (s, k), flattened
template <class T>
struct UnitsForward {
  FullyRecurrentDims d;
  Activation activation;
  bool teacher_forcing;
  const T* pre;
  const T* target;
  T* slope;
  T* error;
  T* keep;
  T* sq_error;
  T* z_next;
  T* outputs;
  RTRL_HD void operator()(index_t idx) const {
    const index_t s = idx / d.units, k = idx % d.units;
    const T y = activate(activation, pre[idx]);
    bool has_target = false;
    T goal = T(0);
    if (target != nullptr && k < d.outputs) {
      goal = target[s * d.outputs + k];
      has_target = !is_nan(goal);
    }
    const T e = has_target ? goal - y : T(0);
    const bool forced = teacher_forcing && has_target;
    slope[idx] = activation_slope(activation, y);
    error[idx] = e;
    keep[idx] = forced ? T(0) : T(1);
    sq_error[idx] = T(0.5) * e * e;
    z_next[s * d.width() + d.recurrent_offset() + k] = forced ? goal : y;
    if (outputs != nullptr && k < d.outputs) outputs[s * d.outputs + k] = y;
  }
};

// Adds the immediate term of the sensitivity update to the product Q = W_U P(t): weight w_kj acts on
// unit k directly, so for the column group r = s n_c + (k - i0) (weight row k of stream s)
//   Q[k, r L + j] += z_j.
// Called as f(r, 0, j) for the columns q = r L + j of a block [q0, ...).
//   Q: [n, ldq] holding P's columns [q0, ...)   z: [B, L]
template <class T>
struct AddImmediateTerm {
  FullyRecurrentDims d;
  index_t q0;
  index_t ldq;
  const T* z;
  T* Q;
  RTRL_HD void operator()(index_t r, index_t, index_t j) const {
    const index_t L = d.width(), rows = d.carried_rows();
    const index_t s = r / rows, k = d.shard_row0 + r % rows;
    Q[k * ldq + (r * L + j - q0)] += z[s * L + j];
  }
};

// The rest of the sensitivity update, one element for stream s, unit k and weight column c
// (P's column q = s N_c + c), with Q already holding W_U P(t) + E(t):
//   P(t+1)[k, q] = f'_k Q[k, q], zeroed for forced units, and
//   G[q] = sum_k (-scale e_k) P(t+1)[k, q] (before zeroing), stream s's part of the step's gradient.
// Only the O visible units have errors, so the contraction runs over the rows [0, O) (Contract; the
// call for unit 0 sets G) and the other rows are only scaled. Row k of a call is unit k0 + k; the
// calls for k = 0, 1, ... of one q come in order (ctx.for_each_serial_k); row(s, k) gathers what
// depends only on (s, k).
//   Q: [n, ldq] holding P's columns [q0, q0 + ldq)   P: [n, B N_c]   G: [B N_c]   slope, error, keep: [B, n]
template <class T>
struct SensitivityRow {
  const T* q;  // row k of Q at the column of c = 0 of stream s
  T* p;        // row k of P at column s N
  T* g;        // G at column s N
  T slope, error;
  bool keep, first;
};

template <class T, bool Contract>
struct SensitivityUpdate {
  FullyRecurrentDims d;
  T error_scale;  // -scale: dL/dy = -scale e
  index_t k0;
  index_t q0;
  const T* Q;
  index_t ldq;
  const T* slope;
  const T* error;
  const T* keep;
  T* P;
  T* G;
  RTRL_HD SensitivityRow<T> row(index_t s, index_t k) const {
    const index_t unit = k0 + k, base = s * d.carried(), sk = s * d.units + unit;
    return SensitivityRow<T>{Q + unit * ldq + (base - q0), P + unit * d.batch * d.carried() + base,
                             G + base, slope[sk], error_scale * error[sk], keep[sk] != T(0), unit == 0};
  }
  RTRL_HD void operator()(const SensitivityRow<T>& r, index_t, index_t, index_t c) const {
    const T v = r.slope * r.q[c];
    r.p[c] = r.keep ? v : T(0);
    if constexpr (Contract) r.g[c] = (r.first ? T(0) : r.g[c]) + r.error * v;
  }
};

// Backpropagated error at the pre-activations (BPTT):
//   delta = f' * (-scale * e + keep * g_rec),  g_rec = dL/dy(t+1) through z(t+1) (zero at the last step)
//   slope, error, keep, g_rec, delta: [B, n]
template <class T>
struct BackpropDelta {
  T scale;
  const T* slope;
  const T* error;
  const T* keep;
  const T* g_rec;
  T* delta;
  RTRL_HD void operator()(index_t idx) const {
    const T g = g_rec != nullptr ? keep[idx] * g_rec[idx] : T(0);
    delta[idx] = slope[idx] * (-scale * error[idx] + g);
  }
};

// Copies the unit block of z into y (or back).   z: [B, L]   y: [B, n]   item: (s, k)
template <class T>
struct UnitsOfZ {
  FullyRecurrentDims d;
  bool to_z;
  T* z;
  T* y;
  RTRL_HD void operator()(index_t idx) const {
    const index_t s = idx / d.units, k = idx % d.units;
    T& zk = z[s * d.width() + d.recurrent_offset() + k];
    if (to_z) zk = y[idx];
    else y[idx] = zk;
  }
};

}  // namespace rtrl
