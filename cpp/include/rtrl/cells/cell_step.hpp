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
  T alpha = T(1);    // RNN: the leaky cell's mixing factor (1: Elman's cell)
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
  T alpha = T(1);     // RNN: the leaky cell's mixing factor; below 1 the cell writes its direct part
                      // of dL/dh(t-1), (1 - alpha) dh, into dh
};

// What a cell's RTRL coefficients are computed from, for one step (DESIGN §3.3).
template <class T>
struct CellCoefficientArgs {
  index_t H, B;
  Nonlinearity nonlinearity;
  T alpha;
  const T* gates;   // [B, G H]  the gate activations of the step
  const T* c_prev;  // [B, H]    LSTM
  const T* c_new;   // [B, H]    LSTM
  const T* aux;     // [B, H]    GRU: W_hn h_prev + b_hn
  const T* h_prev;  // [B, H]
};

// One (stream, unit) row of the RTRL sensitivity pass: the cell's propagate() combines, per column
// c, the product rows of the unit's gates with its coefficients and its previous sensitivities.
template <class T>
struct CellSensitivityRow {
  const T* q[4];   // Q rows of unit j's gates (GRU below its layer: q[3] is the n gate's input side)
  T* p_h;          // row j of P_h at the stream's first column
  T* p_c;          // row j of P_c (LSTM)
  T* g;            // the contraction at the stream's first column, or null
  T k[6];          // coefficients of (s, j)
  T delta;         // dL/dh(t)[s, j]
  bool first;      // j == 0
  index_t n_row;   // GRU: the first column of gate row n_j within the stream's columns
  const T* v;      // GRU: v[s, :], the immediate term's values
  index_t inputs, width;  // GRU: the layer's input count and columns per gate row
};

}  // namespace rtrl
