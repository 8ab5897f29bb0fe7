// Sizes and buffers of one recurrent layer in one direction (PyTorch's RNN/LSTM/GRU layout).
//   G gates, H hidden, I inputs, T steps, B streams; rows of x, y, dy, dx are (t, b) pairs.
#pragma once

#include "rtrl/cells/cell_step.hpp"

namespace rtrl {

enum class CellKind : int { rnn = 0, lstm = 1, gru = 2, elstm = 3 };

struct LayerDims {
  CellKind cell = CellKind::lstm;
  index_t steps = 0;   // T
  index_t batch = 1;   // B
  index_t inputs = 0;  // I
  index_t hidden = 0;  // H
  bool bias = true;
  bool reverse = false;  // process t = T-1, ..., 0
  Nonlinearity nonlinearity = Nonlinearity::tanh;
  double alpha = 1.0;  // RNN: the leaky cell's factor (DESIGN §10)

  RTRL_HD index_t gates() const {
    return cell == CellKind::lstm ? 4 : cell == CellKind::gru ? 3 : cell == CellKind::elstm ? 2 : 1;
  }
  // The time index of the k-th processed step.
  RTRL_HD index_t time(index_t k) const { return reverse ? steps - 1 - k : k; }
};

template <class T>
struct LayerWeights {
  const T* w_ih;  // [G H, I]
  const T* w_hh;  // [G H, H]
  const T* b_ih;  // [G H] or null (no bias)
  const T* b_hh;  // [G H] or null
};

template <class T>
struct LayerForward {
  const T* x;   // [T, B, ldx]   (the first I columns are the input)
  index_t ldx;
  const T* h0;  // [B, H] or null (zeros)
  const T* c0;  // [B, H] or null (LSTM)
  T* y;         // [T, B, ldy]   this direction writes columns [0, H) of y
  index_t ldy;
  T* h_n;       // [B, H]
  T* c_n;       // [B, H] (LSTM) or null
};

// What the forward pass keeps for backward.
template <class T>
struct LayerSaved {
  T* gates;  // [T, B, G H]  gate activations
  T* c;      // [T, B, H]    LSTM cell states (else null)
  T* aux;    // [T, B, H]    GRU: W_hn h + b_hn (else null)
};

template <class T>
struct LayerGrads {
  const T* dy;   // [T, B, lddy]  dL/dy for this direction (columns [0, H))
  index_t lddy;
  const T* dh_n; // [B, H] or null
  const T* dc_n; // [B, H] or null (LSTM)
  T* dx;         // [T, B, I]  written, or added to when accumulate_dx
  bool accumulate_dx;
  T* dh0;        // [B, H]
  T* dc0;        // [B, H] (LSTM) or null
  T* dw_ih;      // [G H, I]  added to
  T* dw_hh;      // [G H, H]  added to
  T* db_ih;      // [G H]     added to (null without bias)
  T* db_hh;      // [G H]
};

}  // namespace rtrl
