// KF-RTRL for RecurrentNet of rnn and LSTM layers (DESIGN §9, §10), all streams at once, on the one
// online loop (online_loop.hpp): the model is exact RTRL's (CellStackModel); the algorithm keeps per
// layer the Kronecker factors A (A_h [H, B G H], A_c for the LSTM) and u [B, W_l] (kf_rtrl.hpp), each
// layer's error by spatial backprop as for the traces. Per layer and step: D_t A as exact RTRL's
// product and pass over one column per parameter row, the cell's responses, the norms and signs,
// A's update, then the gradient as one product w^T u over the streams.
#pragma once

#include <cstdint>

#include "rtrl/algo/cell_traces.hpp"
#include "rtrl/kf_rtrl.hpp"

namespace rtrl {

template <class Cell, class Ctx, class T>
class CellStackKfRtrl {
 public:
  using Model = CellStackModel<Cell, Ctx, T>;

  // st.P_h[l] (and st.P_c[l]): layer l's A [H, B G H]; u[l]: its u [B, W_l].
  CellStackKfRtrl(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st, T* const* u,
                  const RandomStream& random)
      : d_(d), st_(st), u_(u), random_(random), buf_(ctx.template alloc<T>(buffer_size(d))) {}

  static void declare(const CellNetDims& d, OnlineLayout& l) {
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H;
    l.sensitivities += (Cell::kHasCellState ? 2 : 1) * d.layers * H * B * GH;
    for (index_t m = 0; m < d.layers; ++m) {
      l.sensitivities += B * d.layer(m).width();
      l.products.push_back({GH, H, B * GH});
    }
    l.workspace += buffer_size(d);
  }

  // packed gradient [N_<L], errors below the top [L - 1, B, H], D [B, G H], R_h and R_c [B, G H],
  // column norms [B, G H], factors [B, 2], w [B, G H].
  static index_t buffer_size(const CellNetDims& d) {
    const index_t B = d.batch, BH = B * d.hidden, GH = d.gates() * d.hidden;
    return d.n_theta() + (d.layers - 1) * BH + 5 * B * GH + 2 * B;
  }

  void propagate(Ctx& ctx, const Model& m, T* step_grad) {
    if (d_.alpha != 1.0) run<true>(ctx, m, step_grad);
    else run<false>(ctx, m, step_grad);
    ++random_.step;
  }

  void add_checks(StepCheck<T>& c) const {
    const index_t B = d_.batch, H = d_.hidden, GH = d_.gates() * H;
    for (index_t l = 0; l < d_.layers; ++l) {
      const index_t W = d_.layer(l).width();
      c.watched.push_back(StreamBlock<const T>{st_.P_h[l], H, B * GH, GH, GH});
      c.reset.push_back(StreamBlock<T>{st_.P_h[l], H, B * GH, GH, GH});
      if (st_.P_c) c.reset.push_back(StreamBlock<T>{st_.P_c[l], H, B * GH, GH, GH});
      c.watched.push_back(StreamBlock<const T>{u_[l], 1, 0, W, W});
      c.reset.push_back(StreamBlock<T>{u_[l], 1, 0, W, W});
    }
  }

  template <class S>
  void carry(S& s) {
    const index_t B = d_.batch, H = d_.hidden, GH = d_.gates() * H;
    for (index_t l = 0; l < d_.layers; ++l) {
      s.device(st_.P_h[l], H * B * GH);
      if (st_.P_c) s.device(st_.P_c[l], H * B * GH);
      s.device(u_[l], B * d_.layer(l).width());
    }
    s.host(random_.step);
  }

 private:
  template <bool kLeaky>
  void run(Ctx& ctx, const Model& m, T* step_grad) {
    const CellNetDims& d = d_;
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H, BH = B * H, top = d.layers - 1;
    T* packed = buf_.data();
    T* below = packed + d.n_theta();
    T* D = below + top * BH;
    T* R_h = D + B * GH;
    T* R_c = R_h + B * GH;
    T* sums = R_c + B * GH;
    T* w = sums + B * GH;
    T* k = w + B * GH;
    spatial_errors<Cell, kLeaky>(ctx, d, m, st_.params, below, D);
    const Philox rng{random_.seed, random_.first_stream};
    for (index_t l = 0; l < d.layers; ++l) {
      const CellLayerDims dl = d.layer(l);
      const CellLayerStep<T>& s = m.step(l);
      const index_t W = dl.width(), ld = B * GH;
      T* A_h = st_.P_h[l];
      T* A_c = st_.P_c ? st_.P_c[l] : nullptr;
      ctx.template for_product_blocks<T>(GH, H, ld, st_.params + dl.off_w_hh(), H, A_h, ld,
                                         [&](index_t q0, index_t cols, T* Q, index_t ldq) {
        const CellSensitivityStep<T> a{dl, GH, ld, q0, Q, ldq, s.coef, nullptr, nullptr, A_h, A_c, nullptr};
        ctx.for_each_serial_k(q0, q0 + cols, GH, H, CellSensitivity<Cell, T, false, true, kLeaky>{a});
      });
      ctx.for_each_2d(B, H, KfResponse<Cell, T, kLeaky>{H, B, s.coef, R_h, A_c ? R_c : nullptr});
      kf_column_norms(ctx, H, GH, B, A_h, A_c, sums);
      ctx.for_each(B, KfScales<T>{GH, W, sums, R_h, A_c ? R_c : nullptr, u_[l], s.v, k, rng, random_.step,
                                  2 * l});
      const T scale = T(random_.immediate_scale);
      kf_update(ctx, H, GH, B, R_h, k, A_h, scale);
      if (A_c) kf_update(ctx, H, GH, B, R_c, k, A_c, scale);
      const T* delta = l == top ? m.top_delta() : below + l * BH;
      ctx.for_each_serial_k(0, ld, GH, H, KfContract<T>{H, GH, B, delta, A_h, w});
      T* G = packed + dl.theta_at;
      ctx.gemm(true, false, GH, W, B, T(1), w, GH, u_[l], W, T(0), G, W);
      scatter_theta_gradient(ctx, dl, G, step_grad);
    }
  }

  CellNetDims d_;
  CellNetState<T> st_;
  T* const* u_;
  RandomStream random_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) buf_;
};

// Returns the optimizer's update count after the call.
template <class Cell, class Ctx, class T>
std::int64_t cell_net_kf(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st, T* const* u,
                         const CellNetSequence<T>& seq, const CellNetOptions& opt,
                         const RandomStream& random, NonfiniteEvents& events) {
  CellStackModel<Cell, Ctx, T> model(ctx, d, st, seq, opt);
  CellStackKfRtrl<Cell, Ctx, T> algorithm(ctx, d, st, u, random);
  const OnlineOptions loop{opt.update_each_step, opt.optimizer, opt.optimizer_step, opt.on_nonfinite,
                           opt.combine_gradient};
  return online_loop<T>(ctx, model, algorithm, loop, seq.steps, events);
}

}  // namespace rtrl
