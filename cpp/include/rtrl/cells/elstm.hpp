// eLSTM cell (Irie et al. 2023, their quasi-LSTM; DESIGN §9), gates [z | f], an element-wise
// recurrence:
//   z = tanh(x W_z^T + w_z h + b_z),  f = sigmoid(x W_f^T + w_f h + b_f),  h' = f h + (1 - f) z,
// with w_hh [2 H] = [w_z | w_f] one recurrent weight per gate row (b_z = b_ih + b_hh of the z rows).
// hw = w_hh h (element-wise, not a product) is what the shared steps take in W_hh h's place.
#pragma once

#include "rtrl/cells/cell_step.hpp"

namespace rtrl {

struct ElstmCell {
  static constexpr int kGates = 2;
  static constexpr bool kHasCellState = false;
  static constexpr bool kSeparateHiddenGrad = false;  // d_hh == d_ih
  static constexpr bool kDirectStatePath = true;      // h' keeps f h: a part of dL/dh(t-1) not through w_hh
  static constexpr bool kElementwiseRecurrence = true;
  static constexpr int kBiasColumns = 1;              // b_ih and b_hh have one sensitivity
  static constexpr int kCoefficients = 3;

  template <class T>
  RTRL_HD static void forward(const CellForwardStep<T>& a, index_t b, index_t j) {
    const index_t H = a.H;
    T* gates = a.gates + b * 2 * H;
    const T* hw = a.hw + b * 2 * H;
    const T z = math::tanh(gates[j] + hw[j] + a.b_ih[j] + a.b_hh[j]);
    const T f = math::sigmoid(gates[H + j] + hw[H + j] + a.b_ih[H + j] + a.b_hh[H + j]);
    gates[j] = z;
    gates[H + j] = f;
    a.h[b * a.ldh + j] = f * a.h_prev[b * a.ld_h_prev + j] + (T(1) - f) * z;
  }

  // Writes the part of dL/dh(t-1) that does not pass through w_hh (f dh) into a.dh.
  template <class T>
  RTRL_HD static void backward(const CellBackwardStep<T>& a, index_t b, index_t j) {
    const index_t H = a.H, idx = b * H + j;
    const T* gates = a.gates + b * 2 * H;
    const T z = gates[j], f = gates[H + j];
    const T h_prev = a.h_prev[b * a.ld_h_prev + j];
    const T dh = a.dy[b * a.ld_dy + j] + a.dh[idx];
    T* d = a.d_ih + b * 2 * H;
    d[j] = dh * (T(1) - f) * (T(1) - z * z);
    d[H + j] = dh * (h_prev - z) * f * (T(1) - f);
    a.dh[idx] = dh * f;
  }

  // RTRL (DESIGN §3.3): dh = k0 dA_z + k1 dA_f + k2 P_h, k0 = (1 - f) z', k1 = (h - z) f', k2 = f.
  template <class T>
  RTRL_HD static void coefficients(const CellCoefficientArgs<T>& a, index_t s, index_t j, T* k,
                                   index_t stride) {
    const index_t H = a.H;
    const T* g = a.gates + s * 2 * H;
    const T z = g[j], f = g[H + j];
    k[0] = (T(1) - f) * (T(1) - z * z);
    k[stride] = (a.h_prev[s * H + j] - z) * f * (T(1) - f);
    k[2 * stride] = f;
  }

  template <bool kLower, bool kLeaky, class T>
  RTRL_HD static T propagate(const CellSensitivityRow<T>& r, index_t c) {
    const T p_h = r.k[0] * r.q[0][c] + r.k[1] * r.q[1][c] + r.k[2] * r.p_h[c];
    r.p_h[c] = p_h;
    return p_h;
  }
};

// hw[s, r] = w_hh[r] h[s, r mod H]: the eLSTM's recurrent term.   f(s, r)
//   w_hh: [G H]   h: [B, ldh]   hw: [B, G H]
template <class T>
struct ElementwiseRecurrence {
  index_t H, GH;
  const T* w_hh;
  const T* h;
  index_t ldh;
  T* hw;
  RTRL_HD void operator()(index_t s, index_t r) const { hw[s * GH + r] = w_hh[r] * h[s * ldh + r % H]; }
};

// The eLSTM's w_hh as the dense [G H, H] matrix it acts as (row r holds w_hh[r] in column r mod H),
// for the steps written for a full W_hh; and the dense matrix's gradient folded back onto w_hh.
//   f(r, m)   w_hh: [G H]   dense: [G H, H]
template <class T>
struct DenseDiagonal {
  index_t H;
  const T* w_hh;
  T* dense;
  RTRL_HD void operator()(index_t r, index_t m) const { dense[r * H + m] = m == r % H ? w_hh[r] : T(0); }
};

//   f(r)   dense: [G H, H]   grad: [G H], added to
template <class T>
struct AddDiagonal {
  index_t H;
  const T* dense;
  T* grad;
  RTRL_HD void operator()(index_t r) const { grad[r] += dense[r * H + r % H]; }
};

}  // namespace rtrl
