// Elman RNN cell (PyTorch's nn.RNN) and its leaky form (DESIGN §10):
//   a = x W_ih^T + b_ih + h W_hh^T + b_hh;  h' = (1 - alpha) h + alpha act(a),  act = tanh | relu;
// alpha = 1 is Elman's cell.
#pragma once

#include "rtrl/cells/cell_step.hpp"

namespace rtrl {

struct RnnCell {
  static constexpr int kGates = 1;
  static constexpr bool kHasCellState = false;
  static constexpr bool kSeparateHiddenGrad = false;  // d_hh == d_ih
  static constexpr bool kDirectStatePath = false;
  static constexpr bool kElementwiseRecurrence = false;
  static constexpr int kBiasColumns = 1;              // b_ih and b_hh have one sensitivity
  static constexpr int kCoefficients = 2;

  template <class T>
  RTRL_HD static void forward(const CellForwardStep<T>& a, index_t b, index_t j) {
    const index_t idx = b * a.H + j;
    const T pre = a.gates[idx] + a.hw[idx] + a.b_ih[j] + a.b_hh[j];
    const T squashed = math::tanh(pre);  // computed either way: a select, not a branch, per lane
    const T relu = select_bits(pre > T(0), pre, T(0));
    const T f = select_bits(a.nonlinearity == Nonlinearity::tanh, squashed, relu);
    a.gates[idx] = f;
    const T leaky = math::fma(a.alpha, f, (T(1) - a.alpha) * a.h_prev[b * a.ld_h_prev + j]);
    a.h[b * a.ldh + j] = select_bits(a.alpha == T(1), f, leaky);
  }

  template <class T>
  RTRL_HD static void backward(const CellBackwardStep<T>& a, index_t b, index_t j) {
    const index_t idx = b * a.H + j;
    const T f = a.gates[idx];
    const T dh = a.dy[b * a.ld_dy + j] + a.dh[idx];
    const T slope = a.nonlinearity == Nonlinearity::tanh ? T(1) - f * f : (f > T(0) ? T(1) : T(0));
    if (a.alpha == T(1)) {
      a.d_ih[idx] = dh * slope;
      return;
    }
    a.d_ih[idx] = dh * a.alpha * slope;
    a.dh[idx] = dh * (T(1) - a.alpha);
  }

  // RTRL (DESIGN §3.3): dh = k0 dA (+ k1 P_h for the leaky cell), k0 = alpha act'(a), k1 = 1 - alpha.
  template <class T>
  RTRL_HD static void coefficients(const CellCoefficientArgs<T>& a, index_t s, index_t j, T* k,
                                   index_t stride) {
    const T f = a.gates[s * a.H + j];
    const T slope = a.nonlinearity == Nonlinearity::tanh ? T(1) - f * f : (f > T(0) ? T(1) : T(0));
    k[0] = a.alpha * slope;
    k[stride] = T(1) - a.alpha;
  }

  template <bool kLower, bool kLeaky, class T>
  RTRL_HD static T propagate(const CellSensitivityRow<T>& r, index_t c) {
    const T p_h = kLeaky ? r.k[0] * r.q[0][c] + r.k[1] * r.p_h[c] : r.k[0] * r.q[0][c];
    r.p_h[c] = p_h;
    return p_h;
  }
};

}  // namespace rtrl
