// The per-step buffers of a recurrent cell (PyTorch's RNN, LSTM and GRU), for the pointwise parts of
// the forward and backward passes. Pointers are already offset to the current time step.
//
// G = number of gates (RNN 1, LSTM 4, GRU 3); gate blocks are stacked in PyTorch's order along the
// last axis: LSTM [i | f | g | o], GRU [r | z | n]. Items are (b, j): stream b, unit j.
#pragma once

#include "rtrl/math.hpp"

namespace rtrl {

enum class Nonlinearity : int { tanh = 0, relu = 1 };

template <class T>
struct CellForwardStep {
  index_t H;
  Nonlinearity nonlinearity;  // RNN only
  const T* hw;       // [B, G H]  h_prev W_hh^T (without bias)
  const T* b_ih;     // [G H] (zeros for a layer without bias)
  const T* b_hh;     // [G H]
  const T* h_prev;   // [B, ld_h_prev]
  index_t ld_h_prev;
  const T* c_prev;   // [B, H] (LSTM)
  T* gates;          // [B, G H]  in: x W_ih^T (without bias); out: the gate activations (saved)
  T* c;              // [B, H]    LSTM: the new cell state (saved)
  T* aux;            // [B, H]    GRU: W_hn h_prev + b_hn (saved)
  T* h;              // [B, ldh]  the new hidden state
  index_t ldh;
};

template <class T>
struct CellBackwardStep {
  index_t H;
  Nonlinearity nonlinearity;
  const T* gates;     // [B, G H]  saved activations
  const T* c;         // [B, H]    LSTM: c(t)
  const T* c_prev;    // [B, H]    LSTM: c(t-1)
  const T* aux;       // [B, H]    GRU: W_hn h_prev + b_hn
  const T* h_prev;    // [B, ld_h_prev]
  index_t ld_h_prev;
  const T* h;         // [B, ldh]  h(t) (RNN)
  index_t ldh;
  const T* dy;        // [B, ld_dy] dL/dh(t) from the layer's output
  index_t ld_dy;
  T* dh;              // [B, H]    in: dL/dh(t) through later steps; out (GRU): the direct part of dL/dh(t-1)
  T* dc;              // [B, H]    LSTM: in dL/dc(t) through later steps, out dL/dc(t-1)
  T* d_ih;            // [B, G H]  dL/d(pre-activations) as seen by x W_ih^T + b_ih
  T* d_hh;            // [B, G H]  ... as seen by h W_hh^T + b_hh (differs from d_ih for GRU's n gate)
};

}  // namespace rtrl
