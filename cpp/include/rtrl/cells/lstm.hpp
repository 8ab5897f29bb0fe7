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
};

}  // namespace rtrl
