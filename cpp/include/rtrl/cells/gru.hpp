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
  static constexpr bool kDirectStatePath = true;  // z h: a part of dL/dh(t-1) not through W_hh
  static constexpr bool kElementwiseRecurrence = false;
  static constexpr int kBiasColumns = 2;             // b_hn sits inside r: both biases are kept
  static constexpr int kCoefficients = 5;

  template <class T>
  RTRL_HD static void forward(const CellForwardStep<T>& a, index_t b, index_t j) {
    const index_t H = a.H, idx = b * H + j;
    T* gates = a.gates + b * 3 * H;
    const T* hw = a.hw + b * 3 * H;
    const T xr = gates[j] + a.b_ih[j] + a.b_hh[j], hr = hw[j];
    const T xz = gates[H + j] + a.b_ih[H + j] + a.b_hh[H + j], hz = hw[H + j];
    const T xn = gates[2 * H + j] + a.b_ih[2 * H + j], hn = hw[2 * H + j] + a.b_hh[2 * H + j];
    const T r = math::sigmoid(xr + hr), z = math::sigmoid(xz + hz);
    const T n = math::tanh(math::fma(r, hn, xn));
    gates[j] = r;
    gates[H + j] = z;
    gates[2 * H + j] = n;
    a.aux[idx] = hn;
    a.h[b * a.ldh + j] = math::fma(T(1) - z, n, z * a.h_prev[b * a.ld_h_prev + j]);
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

  // RTRL (DESIGN §3.3): dh = k0 dA_z + k1 dA_nx + k2 dA_nh + k3 dA_r + k4 P_h, with dA_nx and dA_nh
  // the input and hidden sides of the n gate's pre-activation:
  //   k0 = (h - n) z', k1 = (1 - z) n', k2 = k1 r, k3 = k1 (W_hn h + b_hn) r', k4 = z
  template <class T>
  RTRL_HD static void coefficients(const CellCoefficientArgs<T>& a, index_t s, index_t j, T* k,
                                   index_t stride) {
    const index_t H = a.H, sj = s * H + j;
    const T* g = a.gates + s * 3 * H;
    const T r = g[j], z = g[H + j], n = g[2 * H + j];
    const T kn = (T(1) - z) * (T(1) - n * n);
    k[0] = (a.h_prev[sj] - n) * z * (T(1) - z);
    k[stride] = kn;
    k[2 * stride] = kn * r;
    k[3 * stride] = kn * a.aux[sj] * r * (T(1) - r);
    k[4 * stride] = z;
  }

  // Within its own layer, dA_nx is the immediate term of the n rows' x-side columns (w_in, b_in);
  // below it (kLower), the product's row q[3] = W_in P_h of the layer below.
  template <bool kLower, bool kLeaky, class T>
  RTRL_HD static T propagate(const CellSensitivityRow<T>& r, index_t c) {
    T p_h;
    if (kLower) {
      p_h = r.k[0] * r.q[1][c] + r.k[1] * r.q[3][c] + r.k[2] * r.q[2][c] + r.k[3] * r.q[0][c] +
            r.k[4] * r.p_h[c];
    } else {
      const index_t I = r.inputs, H = r.width - r.inputs - 2;
      const index_t kx = c - r.n_row;  // column within gate row n_j, if c is in that row
      const bool x_side = kx >= 0 && kx < r.width && (kx < I || kx == I + H);
      const T v_k = r.v[x_side ? kx : 0];  // an in-bounds load on every lane
      p_h = r.k[0] * r.q[1][c] + r.k[1] * (x_side ? v_k : T(0)) + r.k[2] * r.q[2][c] +
            r.k[3] * r.q[0][c] + r.k[4] * r.p_h[c];
    }
    r.p_h[c] = p_h;
    return p_h;
  }
};

}  // namespace rtrl
