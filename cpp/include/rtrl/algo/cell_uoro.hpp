// UORO for RecurrentNet (DESIGN §9, §10), all streams at once, on the one online loop
// (online_loop.hpp): the model is exact RTRL's (CellStackModel); the algorithm keeps per layer the
// state tangent s~ and the parameter tangent theta~ (uoro.hpp), each layer's error taken by spatial
// backprop as for the traces (cell_traces.hpp). Per layer and step: the product w_hh s~_h (B rows),
// the cell's pass over (stream, unit), per-stream scales, then one pass over the layer's parameters
// that rescales theta~, adds theta~_nu, contracts, and leaves the new rows' norms for the next step
// (taken afresh once, when a call starts; a stream the non-finite guard resets has its norms zeroed
// with it).
#pragma once

#include <cstdint>

#include "rtrl/algo/cell_traces.hpp"
#include "rtrl/uoro.hpp"

namespace rtrl {

template <class Cell, class Ctx, class T>
class CellStackUoro {
 public:
  using Model = CellStackModel<Cell, Ctx, T>;
  static constexpr int kRows = TraceRows<Cell>::kCount;

  // st.P_h[l]: layer l's theta~ [B, N_l]; tangent: s~ [L, parts, B, H] (parts: h, and c for LSTM).
  CellStackUoro(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st, T* tangent,
                const RandomStream& random)
      : d_(d), st_(st), tangent_(tangent), random_(random), buf_(ctx.template alloc<T>(buffer_size(d))),
        norms_(buf_.data()) {
    const index_t GH = d.gates() * d.hidden;
    for (index_t l = 0; l < d.layers; ++l)
      ctx.for_each_2d(d.batch, GH, UoroRowNorms<T>{d.layer(l).width(), GH, st.P_h[l], norms(l)});
  }

  static index_t parts() { return Cell::kHasCellState ? 2 : 1; }

  static void declare(const CellNetDims& d, OnlineLayout& l) {
    l.sensitivities += d.batch * d.n_theta() + parts() * d.layers * d.batch * d.hidden;
    l.workspace += buffer_size(d);
    l.carried += norms_size(d);
  }

  // theta~'s row norms [L, B, G H] (carried from step to step), packed gradient [N_<L], errors below
  // the top [L - 1, B, H], D [B, G H], w_hh s~_h [B, G H], A [B, rows, H], scales [B, 3], the signs
  // [B, parts, H].
  static index_t norms_size(const CellNetDims& d) { return d.layers * d.batch * d.gates() * d.hidden; }
  static index_t buffer_size(const CellNetDims& d) {
    const index_t B = d.batch, BH = B * d.hidden, GH = d.gates() * d.hidden;
    return norms_size(d) + d.n_theta() + (d.layers - 1) * BH + 2 * B * GH + kRows * BH + 3 * B + parts() * BH;
  }

  void propagate(Ctx& ctx, const Model& m, T* step_grad) {
    if (d_.alpha != 1.0) run<true>(ctx, m, step_grad);
    else run<false>(ctx, m, step_grad);
    ++random_.step;
  }

  void add_checks(StepCheck<T>& c) const {
    const index_t B = d_.batch, H = d_.hidden;
    for (index_t l = 0; l < d_.layers; ++l) {
      const index_t n = d_.layer(l).n_theta();
      c.watched.push_back(StreamBlock<const T>{st_.P_h[l], 1, 0, n, n});
      c.reset.push_back(StreamBlock<T>{st_.P_h[l], 1, 0, n, n});
      c.watched.push_back(StreamBlock<const T>{tangent_ + l * parts() * B * H, parts(), B * H, H, H});
      c.reset.push_back(StreamBlock<T>{tangent_ + l * parts() * B * H, parts(), B * H, H, H});
      const index_t GH = d_.gates() * H;
      c.reset.push_back(StreamBlock<T>{norms(l), 1, 0, GH, GH});
    }
  }

  template <class S>
  void carry(S& s) {
    for (index_t l = 0; l < d_.layers; ++l) s.device(st_.P_h[l], d_.batch * d_.layer(l).n_theta());
    s.device(tangent_, parts() * d_.layers * d_.batch * d_.hidden);
    s.device(norms(0), norms_size(d_));
    s.host(random_.step);
  }

 private:
  T* norms(index_t l) const { return norms_ + l * d_.batch * d_.gates() * d_.hidden; }

  template <bool kLeaky>
  void run(Ctx& ctx, const Model& m, T* step_grad) {
    const CellNetDims& d = d_;
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H, BH = B * H, top = d.layers - 1;
    T* packed = buf_.data() + norms_size(d);
    T* below = packed + d.n_theta();
    T* D = below + top * BH;
    T* hw = D + B * GH;
    T* A = hw + B * GH;
    T* rho = A + kRows * BH;
    T* nu = rho + 3 * B;
    spatial_errors<Cell, kLeaky>(ctx, d, m, st_.params, below, D);
    const Philox rng{random_.seed, random_.first_stream};
    for (index_t l = 0; l < d.layers; ++l) {
      const CellLayerDims dl = d.layer(l);
      const CellLayerStep<T>& s = m.step(l);
      const T* w_hh = st_.params + dl.off_w_hh();
      const T* h_prev = st_.h + l * BH;
      T* tilde_h = tangent_ + l * parts() * BH;
      T* tilde_c = Cell::kHasCellState ? tilde_h + BH : nullptr;
      const index_t element = l * parts() * H;
      if (dl.elementwise()) ctx.for_each_2d(B, GH, ElementwiseRecurrence<T>{H, GH, w_hh, tilde_h, H, hw});
      else ctx.gemm(false, true, B, GH, H, T(1), tilde_h, H, w_hh, H, T(0), hw, GH);
      ctx.for_each_2d(B, UoroSigns<T>::blocks(parts() * H, element),
                      UoroSigns<T>{parts() * H, rng, random_.step, element, nu});
      ctx.for_each_2d(B, H, UoroStateStep<Cell, T, kLeaky>{H, B, s.coef, hw, tilde_h, tilde_c, nu, A,
                                                           T(random_.immediate_scale)});
      T* theta = st_.P_h[l];
      const T* delta = l == top ? m.top_delta() : below + l * BH;
      ctx.for_each(B, UoroScales<Cell, T>{dl, norms(l), A, s.v, h_prev, tilde_h, tilde_c, nu, delta, rho});
      T* G = packed + dl.theta_at;
      ctx.for_each_serial_k(0, GH * dl.width(), dl.width(), B,
                            UoroParamStep<Cell, T>{dl, theta, A, s.v, h_prev, rho, G, norms(l)});
      scatter_theta_gradient(ctx, dl, G, step_grad);
    }
  }

  CellNetDims d_;
  CellNetState<T> st_;
  T* tangent_;
  RandomStream random_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) buf_;
  T* norms_;  // [L, B, G H] at buf_'s start
};

// Returns the optimizer's update count after the call.
template <class Cell, class Ctx, class T>
std::int64_t cell_net_uoro(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st, T* tangent,
                           const CellNetSequence<T>& seq, const CellNetOptions& opt,
                           const RandomStream& random, NonfiniteEvents& events) {
  CellStackModel<Cell, Ctx, T> model(ctx, d, st, seq, opt);
  CellStackUoro<Cell, Ctx, T> algorithm(ctx, d, st, tangent, random);
  const OnlineOptions loop{opt.update_each_step, opt.optimizer, opt.optimizer_step, opt.on_nonfinite,
                           opt.combine_gradient};
  return online_loop<T>(ctx, model, algorithm, loop, seq.steps, events);
}

}  // namespace rtrl
