// GRU cell (PyTorch's nn.GRU), gates [r | z | n]:
//   r, z = sigmoid(x W_i.^T + b_i. + h W_h.^T + b_h.);
//   n = tanh(x W_in^T + b_in + r (h W_hn^T + b_hn));  h' = (1 - z) n + z h.
#pragma once

#include "rtrl/cells/cell_step.hpp"

namespace rtrl {

struct GruCell {
  static constexpr int kGates = 3;
  static constexpr bool kHasCellState = false;
  static constexpr bool kSeparateHiddenGrad = true;  // the n gate sees r (h W_hn^T + b_hn)

  template <class T>
  RTRL_HD static void forward(const CellForwardStep<T>& a, index_t b, index_t j) {
    const index_t H = a.H, idx = b * H + j;
    T* gates = a.gates + b * 3 * H;
    const T* hw = a.hw + b * 3 * H;
    const T xr = gates[j] + a.b_ih[j] + a.b_hh[j], hr = hw[j];
    const T xz = gates[H + j] + a.b_ih[H + j] + a.b_hh[H + j], hz = hw[H + j];
    const T xn = gates[2 * H + j] + a.b_ih[2 * H + j], hn = hw[2 * H + j] + a.b_hh[2 * H + j];
    const T r = math::sigmoid(xr + hr), z = math::sigmoid(xz + hz);
    const T n = math::tanh(xn + r * hn);
    gates[j] = r;
    gates[H + j] = z;
    gates[2 * H + j] = n;
    a.aux[idx] = hn;
    a.h[b * a.ldh + j] = (T(1) - z) * n + z * a.h_prev[b * a.ld_h_prev + j];
  }

  // Also writes the part of dL/dh(t-1) that does not pass through W_hh (z dh) into a.dh.
  template <class T>
  RTRL_HD static void backward(const CellBackwardStep<T>& a, index_t b, index_t j) {
    const index_t H = a.H, idx = b * H + j;
    const T* gates = a.gates + b * 3 * H;
    const T r = gates[j], z = gates[H + j], n = gates[2 * H + j];
    const T hn = a.aux[idx];
    const T h_prev = a.h_prev[b * a.ld_h_prev + j];
    const T dh = a.dy[b * a.ld_dy + j] + a.dh[idx];
    const T dn = dh * (T(1) - z) * (T(1) - n * n);
    const T dz = dh * (h_prev - n) * z * (T(1) - z);
    const T dr = dn * hn * r * (T(1) - r);
    T* di = a.d_ih + b * 3 * H;
    T* dhh = a.d_hh + b * 3 * H;
    di[j] = dr;
    di[H + j] = dz;
    di[2 * H + j] = dn;
    dhh[j] = dr;
    dhh[H + j] = dz;
    dhh[2 * H + j] = dn * r;
    a.dh[idx] = dh * z;
  }
};

}  // namespace rtrl
