// SnAp-1 and e-prop for RecurrentNet (DESIGN §9, §10), all streams at once, on the one online loop
// (online_loop.hpp): the model is exact RTRL's (CellStackModel, cell_rtrl.hpp); the algorithm keeps
// one layer's traces per layer (its state x its own parameters, its input from below taken as given;
// diagonal_traces.hpp). Per step: each layer's error, from the readout's dL/dh on the top layer and
// by back-propagating it through the current step below (spatial backprop: the layer above's
// coefficients, then one product with its W_ih); then per layer one pass over its parameters that
// moves the traces on and contracts them with the layer's error; then the packed gradient scattered
// into the step's.
#pragma once

#include <cstdint>

#include "rtrl/algo/cell_rtrl.hpp"
#include "rtrl/diagonal_traces.hpp"

namespace rtrl {

// Each layer's error for the step: the top layer's dL/dh from the readout (m.top_delta()), each layer
// below it the one above's back-propagated through the current step only: D = delta^{l+1} dh'/dA
// (InputSideError), then delta^l = D W_ih^{l+1}.   below: [L - 1, B, H] out   D: [B, G H] scratch
template <class Cell, bool kLeaky, class Ctx, class T>
void spatial_errors(Ctx& ctx, const CellNetDims& d, const CellStackModel<Cell, Ctx, T>& m,
                    const T* params, T* below, T* D) {
  const index_t B = d.batch, H = d.hidden, GH = d.gates() * H, BH = B * H, top = d.layers - 1;
  for (index_t l = top - 1; l >= 0; --l) {
    const CellLayerDims above = d.layer(l + 1);
    const T* delta_above = l + 1 == top ? m.top_delta() : below + (l + 1) * BH;
    ctx.for_each_2d(B, H, InputSideError<Cell, T, kLeaky>{H, B, m.step(l + 1).coef, delta_above, D});
    ctx.gemm(false, false, B, H, GH, T(1), D, GH, params + above.params_at, above.inputs, T(0),
             below + l * BH, H);
  }
}

template <class Cell, class Ctx, class T>
class CellStackTraces {
 public:
  using Model = CellStackModel<Cell, Ctx, T>;

  // st.P_h[l] (and st.P_c[l]): layer l's traces [B, G H, W_l].
  CellStackTraces(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st, TraceRule rule)
      : d_(d), st_(st), rule_(rule), buf_(ctx.template alloc<T>(buffer_size(d))) {}

  // Per layer: J_h (and J_c) [B, N_l]. Per call: the packed gradient [N_<L], the errors of the
  // layers below the top [L - 1, B, H] and the input-side errors of one layer [B, G H].
  static void declare(const CellNetDims& d, OnlineLayout& l) {
    l.sensitivities += (Cell::kHasCellState ? 2 : 1) * d.batch * d.n_theta();
    l.workspace += buffer_size(d);
  }

  static index_t buffer_size(const CellNetDims& d) {
    const index_t BH = d.batch * d.hidden;
    return d.n_theta() + (d.layers - 1) * BH + (d.layers > 1 ? d.gates() * BH : 0);
  }

  void propagate(Ctx& ctx, const Model& m, T* step_grad) {
    if (d_.alpha != 1.0) run<true>(ctx, m, step_grad);
    else run<false>(ctx, m, step_grad);
  }

  void add_checks(StepCheck<T>& c) const {
    for (index_t l = 0; l < d_.layers; ++l) {
      const index_t n = d_.layer(l).n_theta();
      c.watched.push_back(StreamBlock<const T>{st_.P_h[l], 1, 0, n, n});
      c.reset.push_back(StreamBlock<T>{st_.P_h[l], 1, 0, n, n});
      if (st_.P_c) c.reset.push_back(StreamBlock<T>{st_.P_c[l], 1, 0, n, n});
    }
  }

  template <class S>
  void carry(S& s) {
    for (index_t l = 0; l < d_.layers; ++l) {
      s.device(st_.P_h[l], d_.batch * d_.layer(l).n_theta());
      if (st_.P_c) s.device(st_.P_c[l], d_.batch * d_.layer(l).n_theta());
    }
  }

 private:
  template <bool kLeaky>
  void run(Ctx& ctx, const Model& m, T* step_grad) {
    const CellNetDims& d = d_;
    const index_t BH = d.batch * d.hidden, top = d.layers - 1;
    T* packed = buf_.data();
    T* below = packed + d.n_theta();  // [L - 1, B, H]
    T* D = below + top * BH;          // [B, G H]
    auto delta_of = [&](index_t l) -> const T* { return l == top ? m.top_delta() : below + l * BH; };
    spatial_errors<Cell, kLeaky>(ctx, d, m, st_.params, below, D);
    const bool recurrent = rule_ == TraceRule::snap1;
    for (index_t l = 0; l < d.layers; ++l) {
      const CellLayerDims dl = d.layer(l);
      const CellLayerStep<T>& s = m.step(l);
      T* G = packed + dl.theta_at;
      move_cell_traces<Cell, kLeaky>(ctx, dl, recurrent, st_.params + dl.off_w_hh(), s.coef, s.v, st_.h + l * BH,
                                     delta_of(l), st_.P_h[l], st_.P_c ? st_.P_c[l] : nullptr, G);
      scatter_theta_gradient(ctx, dl, G, step_grad);
    }
  }

  CellNetDims d_;
  CellNetState<T> st_;
  TraceRule rule_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) buf_;
};

// feedback: [O, H] in w_out's place for the top layer's error (random feedback), or null.
// Returns the optimizer's update count after the call.
template <class Cell, class Ctx, class T>
std::int64_t cell_net_traces(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st,
                             const CellNetSequence<T>& seq, const CellNetOptions& opt, TraceRule rule,
                             const T* feedback, NonfiniteEvents& events) {
  CellStackModel<Cell, Ctx, T> model(ctx, d, st, seq, opt);
  model.use_feedback(feedback);
  CellStackTraces<Cell, Ctx, T> algorithm(ctx, d, st, rule);
  const OnlineOptions loop{opt.update_each_step, opt.optimizer, opt.optimizer_step, opt.on_nonfinite,
                           opt.combine_gradient};
  return online_loop<T>(ctx, model, algorithm, loop, seq.steps, events);
}

}  // namespace rtrl
