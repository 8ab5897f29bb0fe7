// Elman RNN cell (PyTorch's nn.RNN): h' = act(x W_ih^T + b_ih + h W_hh^T + b_hh), act = tanh | relu.
#pragma once

#include "rtrl/cells/cell_step.hpp"

namespace rtrl {

struct RnnCell {
  static constexpr int kGates = 1;
  static constexpr bool kHasCellState = false;
  static constexpr bool kSeparateHiddenGrad = false;  // d_hh == d_ih

  template <class T>
  RTRL_HD static void forward(const CellForwardStep<T>& a, index_t b, index_t j) {
    const index_t idx = b * a.H + j;
    const T pre = a.gates[idx] + a.hw[idx] + a.b_ih[j] + a.b_hh[j];
    const T squashed = math::tanh(pre);  // computed either way: a select, not a branch, per lane
    const T h = a.nonlinearity == Nonlinearity::tanh ? squashed : (pre > T(0) ? pre : T(0));
    a.gates[idx] = h;
    a.h[b * a.ldh + j] = h;
  }

  template <class T>
  RTRL_HD static void backward(const CellBackwardStep<T>& a, index_t b, index_t j) {
    const index_t idx = b * a.H + j;
    const T h = a.gates[idx];
    const T dh = a.dy[b * a.ld_dy + j] + a.dh[idx];
    const T slope = a.nonlinearity == Nonlinearity::tanh ? T(1) - h * h : (h > T(0) ? T(1) : T(0));
    a.d_ih[idx] = dh * slope;
  }
};

}  // namespace rtrl
