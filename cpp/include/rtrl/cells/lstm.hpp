// LSTM cell (PyTorch's nn.LSTM), gates [i | f | g | o]:
//   i, f, o = sigmoid(.), g = tanh(.) of x W_ih^T + b_ih + h W_hh^T + b_hh;
//   c' = f c + i g;  h' = o tanh(c').
#pragma once

#include "rtrl/cells/cell_step.hpp"

namespace rtrl {

struct LstmCell {
  static constexpr int kGates = 4;
  static constexpr bool kHasCellState = true;
  static constexpr bool kSeparateHiddenGrad = false;
  static constexpr bool kDirectStatePath = false;
  static constexpr bool kElementwiseRecurrence = false;
  static constexpr int kBiasColumns = 1;  // b_ih and b_hh have one sensitivity
  static constexpr int kCoefficients = 6;

  template <class T>
  RTRL_HD static void forward(const CellForwardStep<T>& a, index_t b, index_t j) {
    const index_t H = a.H, idx = b * H + j;
    T* gates = a.gates + b * 4 * H;
    const T* hw = a.hw + b * 4 * H;
    T pre[4];
    for (int g = 0; g < 4; ++g)
      pre[g] = gates[g * H + j] + hw[g * H + j] + a.b_ih[g * H + j] + a.b_hh[g * H + j];
    const T i = math::sigmoid(pre[0]), f = math::sigmoid(pre[1]);
    const T gg = math::tanh(pre[2]), o = math::sigmoid(pre[3]);
    const T c = f * a.c_prev[idx] + i * gg;
    gates[j] = i;
    gates[H + j] = f;
    gates[2 * H + j] = gg;
    gates[3 * H + j] = o;
    a.c[idx] = c;
    a.h[b * a.ldh + j] = o * math::tanh(c);
  }

  template <class T>
  RTRL_HD static void backward(const CellBackwardStep<T>& a, index_t b, index_t j) {
    const index_t H = a.H, idx = b * H + j;
    const T* gates = a.gates + b * 4 * H;
    const T i = gates[j], f = gates[H + j], gg = gates[2 * H + j], o = gates[3 * H + j];
    const T tc = math::tanh(a.c[idx]);
    const T dh = a.dy[b * a.ld_dy + j] + a.dh[idx];
    const T dc = a.dc[idx] + dh * o * (T(1) - tc * tc);
    T* d = a.d_ih + b * 4 * H;
    d[j] = dc * gg * i * (T(1) - i);
    d[H + j] = dc * a.c_prev[idx] * f * (T(1) - f);
    d[2 * H + j] = dc * i * (T(1) - gg * gg);
    d[3 * H + j] = dh * tc * o * (T(1) - o);
    a.dc[idx] = dc * f;
  }

  // RTRL (DESIGN §3.3), with dA_x the sensitivity of gate x's pre-activation:
  //   dc = k5 P_c + k0 dA_f + k1 dA_i + k2 dA_g,  dh = k3 dA_o + k4 dc
  //   k0 = c_prev f', k1 = g i', k2 = i g', k3 = o' tanh(c), k4 = o tanh'(c), k5 = f
  // (x' is the derivative of gate x with respect to its pre-activation, written with x itself.)
  template <class T>
  RTRL_HD static void coefficients(const CellCoefficientArgs<T>& a, index_t s, index_t j, T* k,
                                   index_t stride) {
    const index_t H = a.H, sj = s * H + j;
    const T* g = a.gates + s * 4 * H;
    const T i = g[j], f = g[H + j], gg = g[2 * H + j], o = g[3 * H + j];
    const T tc = math::tanh(a.c_new[sj]);
    k[0] = a.c_prev[sj] * f * (T(1) - f);
    k[stride] = gg * i * (T(1) - i);
    k[2 * stride] = i * (T(1) - gg * gg);
    k[3 * stride] = o * (T(1) - o) * tc;
    k[4 * stride] = o * (T(1) - tc * tc);
    k[5 * stride] = f;
  }

  template <bool kLower, bool kLeaky, class T>
  RTRL_HD static T propagate(const CellSensitivityRow<T>& r, index_t c) {
    const T dc = r.k[5] * r.p_c[c] + r.k[0] * r.q[1][c] + r.k[1] * r.q[0][c] + r.k[2] * r.q[2][c];
    const T p_h = r.k[3] * r.q[3][c] + r.k[4] * dc;
    r.p_c[c] = dc;
    r.p_h[c] = p_h;
    return p_h;
  }
};

}  // namespace rtrl
