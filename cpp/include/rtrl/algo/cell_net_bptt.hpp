// BPTT for RecurrentNet — a stack of RNN/LSTM/GRU layers and a linear readout — over one chunk, the
// weights fixed during it (DESIGN §10). Each layer's forward over the whole chunk, bottom-up, its
// outputs the inputs of the layer above (recurrent_layer_forward); the readout, its loss and dL/dh of
// the top layer over all T B rows; each layer's backward, top-down, its dL/dx the dL/dy of the layer
// below (recurrent_layer_backward). The chunk ends the gradient's path back in time (truncation); the
// state moves on to the chunk's last. The chunk is BPTT's step for the non-finite policy
// (guarded_chunk): its gradient, added into grad, is dropped when it or the new state is non-finite.
#pragma once

#include <vector>

#include "rtrl/algo/nonfinite_guard.hpp"
#include "rtrl/algo/readout.hpp"
#include "rtrl/algo/recurrent_layer.hpp"
#include "rtrl/cell_rtrl.hpp"

namespace rtrl {

template <class Cell, class Ctx, class T>
void cell_net_bptt(Ctx& ctx, const CellNetDims& d, const CellNetBpttState<T>& st,
                   const CellNetSequence<T>& seq, LossKind loss, double loss_scale,
                   NonfinitePolicy policy, NonfiniteEvents& events) {
  const index_t Tn = seq.steps, B = d.batch, H = d.hidden, GH = d.gates() * H, L = d.layers;
  const index_t BH = B * H, TBH = Tn * BH, top = L - 1;
  const bool lstm = st.c != nullptr, gru = d.cell == CellKind::gru;
  // per layer: y [T, B, H], gates [T, B, G H], c [T, B, H] (LSTM), aux [T, B, H] (GRU)
  const index_t per_layer = TBH + Tn * B * GH + (lstm ? TBH : 0) + (gru ? TBH : 0);
  auto saved_buf = ctx.template alloc<T>(L * per_layer);
  // the new state [L, B, H] (h, then c), dL/dh of the top layer and the dL/dy of two layers below
  // it in turn [T, B, H] each, dL/dx of layer 0 [T, B, I], dL/dh0 and dL/dc0 [B, H]
  const index_t below = L > 2 ? 2 : L - 1;
  auto work_buf = ctx.template alloc<T>(2 * L * BH + (1 + below) * TBH + Tn * B * d.inputs + 2 * BH);
  T* h_n = work_buf.data();
  T* c_n = h_n + L * BH;
  T* delta_top = c_n + L * BH;
  T* delta_below[2] = {delta_top + TBH, delta_top + (below > 1 ? 2 : 1) * TBH};
  T* dx0 = delta_top + (1 + below) * TBH;
  T* dh0 = dx0 + Tn * B * d.inputs;
  T* dc0 = dh0 + BH;
  // The eLSTM's w_hh of each layer as the dense [G H, H] matrix it acts as, and its gradient.
  const bool elementwise = d.cell == CellKind::elstm;
  auto dense_buf = ctx.template alloc<T>(elementwise ? 2 * L * GH * H : 0);
  T* dense_w = dense_buf.data();
  T* dense_g = dense_w + (elementwise ? L * GH * H : 0);

  struct Layer {
    LayerDims dims;
    LayerWeights<T> w;
    LayerForward<T> io;
    LayerSaved<T> saved;
  };
  std::vector<Layer> layers(static_cast<size_t>(L));
  for (index_t l = 0; l < L; ++l) {
    const CellLayerDims cl = d.layer(l);
    Layer& a = layers[size_t(l)];
    a.dims.cell = d.cell;
    a.dims.steps = Tn;
    a.dims.batch = B;
    a.dims.inputs = cl.inputs;
    a.dims.hidden = H;
    a.dims.nonlinearity = d.nonlinearity;
    a.dims.alpha = d.alpha;
    a.w = LayerWeights<T>{st.params + cl.params_at, st.params + cl.off_w_hh(),
                          st.params + cl.off_b_ih(), st.params + cl.off_b_hh()};
    if (elementwise) {
      ctx.for_each_2d(GH, H, DenseDiagonal<T>{H, st.params + cl.off_w_hh(), dense_w + l * GH * H});
      a.w.w_hh = dense_w + l * GH * H;
    }
    T* s = saved_buf.data() + l * per_layer;
    T* y = s;
    a.saved.gates = y + TBH;
    a.saved.c = lstm ? a.saved.gates + Tn * B * GH : nullptr;
    a.saved.aux = gru ? a.saved.gates + Tn * B * GH : nullptr;
    const T* x = l == 0 ? seq.x : layers[size_t(l - 1)].io.y;
    a.io = LayerForward<T>{x, cl.inputs, st.h + l * BH, lstm ? st.c + l * BH : nullptr, y, H,
                           h_n + l * BH, lstm ? c_n + l * BH : nullptr};
  }

  auto run = [&] {
    for (const Layer& a : layers) recurrent_layer_forward<Cell>(ctx, a.dims, a.w, a.io, a.saved);
    ReadoutArgs<T> ra{};
    ra.rows = Tn * B;
    ra.hidden = H;
    ra.outputs = d.outputs;
    ra.per_step = B;
    ra.loss = loss;
    ra.scale = T(loss_scale);
    ra.h = layers.back().io.y;
    ra.ldh = H;
    ra.w_out = st.params + d.off_w_out();
    ra.b_out = st.params + d.off_b_out();
    ra.target = seq.target;
    ra.y = seq.outputs;
    ra.step_loss = seq.loss;
    ra.delta_h = delta_top;
    ra.grad_w_out = st.grad + d.off_w_out();
    ra.grad_b_out = st.grad + d.off_b_out();
    ra.accumulate = true;
    ra.scratch = nullptr;
    if (Tn > 0) readout_forward_backward(ctx, ra);
    for (index_t l = top; l >= 0; --l) {
      const CellLayerDims cl = d.layer(l);
      const Layer& a = layers[size_t(l)];
      LayerGrads<T> g{};
      g.dy = l == top ? delta_top : delta_below[(top - 1 - l) % 2];
      g.lddy = H;
      g.dx = l == 0 ? dx0 : delta_below[(top - l) % 2];
      g.accumulate_dx = false;
      g.dh0 = dh0;
      g.dc0 = lstm ? dc0 : nullptr;
      g.dw_ih = st.grad + cl.params_at;
      g.dw_hh = st.grad + cl.off_w_hh();
      g.db_ih = st.grad + cl.off_b_ih();
      g.db_hh = st.grad + cl.off_b_hh();
      T* dense = dense_g + l * GH * H;
      if (elementwise) {
        ctx.for_each(GH * H, Fill<T>{T(0), dense});
        g.dw_hh = dense;
      }
      recurrent_layer_backward<Cell>(ctx, a.dims, a.w, a.io, a.saved, g);
      if (elementwise) ctx.for_each(GH, AddDiagonal<T>{H, dense, st.grad + cl.off_w_hh()});
    }
    ctx.for_each(L * BH, CopyInto<T>{h_n, st.h});
    if (lstm) ctx.for_each(L * BH, CopyInto<T>{c_n, st.c});
  };

  // The offending streams: those with a non-finite input, output, dL/dh at the top or new state.
  auto declare = [&](StepCheck<T>& c) {
    const index_t I = d.inputs, O = d.outputs, lstm_rows = lstm ? L : 0;
    c.ranges.push_back({st.h, L * BH});
    c.ranges.push_back({st.c, lstm ? L * BH : 0});
    c.watched.push_back(StreamBlock<const T>{seq.x, Tn, B * I, I, I});
    c.watched.push_back(StreamBlock<const T>{seq.outputs, Tn, B * O, O, O});
    c.watched.push_back(StreamBlock<const T>{delta_top, Tn, BH, H, H});
    c.watched.push_back(StreamBlock<const T>{st.h, L, BH, H, H});
    c.watched.push_back(StreamBlock<const T>{st.c, lstm_rows, BH, H, H});
    c.reset.push_back(StreamBlock<T>{st.h, L, BH, H, H});
    c.reset.push_back(StreamBlock<T>{st.c, lstm_rows, BH, H, H});
  };
  guarded_chunk<T>(ctx, policy, B, events, st.grad, d.n_params(), run, declare);
}

}  // namespace rtrl
