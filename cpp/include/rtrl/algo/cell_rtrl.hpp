// Exact RTRL for RecurrentNet — a stack of RNN/LSTM/GRU layers and a linear readout — all streams
// at once (DESIGN §3.3, §10), on the one online loop (online_loop.hpp).
//
// The model (CellStackModel) runs each layer's forward step bottom-up, the readout with its loss and
// dL/dh of the top layer, and each layer's RTRL coefficients. The algorithm (CellStackExactRtrl)
// then moves each layer's sensitivities on, bottom-up: for each block of a layer's own columns
// (ctx.for_product_blocks) the product Q = W_hh P_h(t-1) plus the immediate terms, and for the
// columns of the layers below the product Q = W_ih P_h^{l-1}(t) + W_hh P_h^l(t-1) (two slabs of one
// product); then one pass that writes P_h(t) (and P_c(t)) in place and, on the top layer, contracts
// dL/dh into the gradient; then the stream reduction into the step's gradient.
#pragma once

#include <cstdint>
#include <vector>

#include "rtrl/algo/layout.hpp"
#include "rtrl/algo/online_loop.hpp"
#include "rtrl/algo/readout.hpp"
#include "rtrl/algo/recurrent_layer.hpp"
#include "rtrl/cell_rtrl.hpp"

namespace rtrl {

// One layer's per-step buffers.
template <class T>
struct CellLayerStep {
  T* v;        // [B, W_l]  the own columns' values
  T* gates;    // [B, G H]
  T* hw;       // [B, G H]
  T* c_new;    // [B, H]
  T* aux;      // [B, H]
  T* h_new;    // [B, H]
  T* delta_h;  // [B, H]  dL/dh (top layer), right after h_new
  T* coef;     // [K, B, H]
};

template <class Cell, class Ctx, class T>
class CellStackModel {
 public:
  using Context = Ctx;
  static constexpr int K = Cell::kCoefficients;

  CellStackModel(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st,
                 const CellNetSequence<T>& seq, const CellNetOptions& opt)
      : d_(d), st_(st), seq_(seq), opt_(opt),
        buf_(ctx.template alloc<T>(buffer_size(d))) {
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H, BH = B * H;
    T* p = buf_.data();
    for (index_t l = 0; l < d.layers; ++l) {
      CellLayerStep<T> s;
      s.v = p;
      s.gates = s.v + B * d.layer(l).width();
      s.hw = s.gates + B * GH;
      s.c_new = s.hw + B * GH;
      s.aux = s.c_new + BH;
      s.h_new = s.aux + BH;
      s.delta_h = s.h_new + BH;
      s.coef = s.delta_h + BH;
      p = s.coef + K * BH;
      steps_.push_back(s);
    }
    readout_scratch_ = p;  // [B O + B]
  }

  static void declare(const CellNetDims& d, OnlineLayout& l) {
    l.state += (Cell::kHasCellState ? 2 : 1) * d.layers * d.batch * d.hidden;
    l.workspace += buffer_size(d);
    l.carried += (Cell::kHasCellState ? 2 : 1) * d.layers * d.batch * d.hidden;
  }

  static index_t buffer_size(const CellNetDims& d) {
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H, BH = B * H;
    index_t n = B * d.outputs + B;
    for (index_t l = 0; l < d.layers; ++l) n += B * d.layer(l).width() + 2 * B * GH + (4 + K) * BH;
    return n;
  }

  const CellNetDims& dims() const { return d_; }
  index_t n_params() const { return d_.n_params(); }
  index_t streams() const { return d_.batch; }
  T* params() const { return st_.params; }
  T* grad() const { return st_.grad; }
  T* opt_state() const { return st_.opt_state; }
  const CellLayerStep<T>& step(index_t l) const { return steps_[size_t(l)]; }
  const T* top_delta() const { return steps_.back().delta_h; }
  bool has_cell_state() const { return st_.c != nullptr; }
  // feedback: [O, H] in w_out's place for the top layer's dL/dh (random feedback), or null.
  void use_feedback(const T* feedback) { feedback_ = feedback; }

  void begin(Ctx&) {}

  void forward(Ctx& ctx, index_t t, T* step_grad) {
    const CellNetDims& d = d_;
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H, BH = B * H;
    for (index_t l = 0; l < d.layers; ++l) {
      const CellLayerDims ld = d.layer(l);
      const CellLayerStep<T>& s = steps_[size_t(l)];
      const T* x = l == 0 ? seq_.x + t * B * d.inputs : steps_[size_t(l - 1)].h_new;
      const T* w_ih = st_.params + ld.params_at;
      const T* w_hh = st_.params + ld.off_w_hh();
      const T* h = st_.h + l * BH;
      const T* c = st_.c ? st_.c + l * BH : nullptr;
      ctx.for_each_serial_k(0, B * ld.width(), ld.width(), 1, LoadColumnValues<T>{ld, x, h, s.v});
      ctx.gemm(false, true, B, GH, ld.inputs, T(1), x, ld.inputs, w_ih, ld.inputs, T(0), s.gates, GH);
      if (ld.elementwise()) ctx.for_each_2d(B, GH, ElementwiseRecurrence<T>{H, GH, w_hh, h, H, s.hw});
      else ctx.gemm(false, true, B, GH, H, T(1), h, H, w_hh, H, T(0), s.hw, GH);
      CellForwardStep<T> fwd{H, d.nonlinearity, s.hw, st_.params + ld.off_b_ih(),
                             st_.params + ld.off_b_hh(), h, H, c, s.gates, s.c_new, s.aux,
                             s.h_new, H};
      fwd.alpha = T(d.alpha);
      ctx.for_each_2d(B, H, CellForwardOp<Cell, T>{fwd});
    }

    const CellLayerStep<T>& top = steps_.back();
    const index_t O = d.outputs, target_width = opt_.loss == LossKind::mse ? O : 1;
    ReadoutArgs<T> ra{};
    ra.rows = B;
    ra.hidden = H;
    ra.outputs = O;
    ra.per_step = B;
    ra.loss = opt_.loss;
    ra.scale = T(opt_.loss_scale);
    ra.h = top.h_new;
    ra.ldh = H;
    ra.w_out = st_.params + d.off_w_out();
    ra.b_out = st_.params + d.off_b_out();
    ra.target = seq_.target ? seq_.target + t * B * target_width : nullptr;
    ra.y = seq_.outputs + t * B * O;
    ra.step_loss = seq_.loss + t;
    ra.delta_h = top.delta_h;
    ra.grad_w_out = step_grad + d.off_w_out();
    ra.grad_b_out = step_grad + d.off_b_out();
    ra.accumulate = false;
    ra.scratch = readout_scratch_;
    ra.feedback = feedback_;
    readout_forward_backward(ctx, ra);

    for (index_t l = 0; l < d.layers; ++l) {
      const CellLayerStep<T>& s = steps_[size_t(l)];
      const CellCoefficientArgs<T> a{H, B, d.nonlinearity, T(d.alpha), s.gates,
                                     st_.c ? st_.c + l * BH : nullptr, s.c_new, s.aux,
                                     st_.h + l * BH};
      ctx.for_each_2d(B, H, ComputeCoefficients<Cell, T>{a, s.coef});
    }
  }

  // The top layer's h_new and delta_h are adjacent: [2, B, H].
  void add_checks(StepCheck<T>& c) const {
    const index_t BH = d_.batch * d_.hidden, H = d_.hidden, lstm = st_.c ? 1 : 0;
    for (index_t l = 0; l < d_.layers; ++l) {
      const CellLayerStep<T>& s = steps_[size_t(l)];
      const index_t rows = l == d_.layers - 1 ? 2 : 1;
      c.ranges.push_back({s.h_new, rows * BH});
      c.ranges.push_back({s.c_new, lstm * BH});
      c.watched.push_back(StreamBlock<const T>{s.h_new, rows, BH, H, H});
      c.watched.push_back(StreamBlock<const T>{s.c_new, lstm, 0, H, H});
      c.reset.push_back(StreamBlock<T>{s.h_new, 1, 0, H, H});
      c.reset.push_back(StreamBlock<T>{s.c_new, lstm, 0, H, H});
    }
  }

  void advance(Ctx& ctx) {
    const index_t B = d_.batch, H = d_.hidden, BH = B * H;
    for (index_t l = 0; l < d_.layers; ++l) {
      const CellLayerStep<T>& s = steps_[size_t(l)];
      ctx.for_each_2d(B, H, CopyRows<T>{s.h_new, H, st_.h + l * BH, H});
      if (st_.c) ctx.for_each_2d(B, H, CopyRows<T>{s.c_new, H, st_.c + l * BH, H});
    }
  }

  void end(Ctx&) {}

  template <class S>
  void carry(S& s) {
    s.device(st_.h, d_.layers * d_.batch * d_.hidden);
    s.device(st_.c, st_.c ? d_.layers * d_.batch * d_.hidden : 0);
  }

 private:
  CellNetDims d_;
  CellNetState<T> st_;
  CellNetSequence<T> seq_;
  CellNetOptions opt_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) buf_;
  std::vector<CellLayerStep<T>> steps_;
  T* readout_scratch_;
  const T* feedback_ = nullptr;
};

// Exact RTRL's sensitivities over a stack: P_h^l [H, B N_<=l] (and P_c^l) per layer; a shard of
// column-sharded RTRL carries [H, B C_<=l] (cell_rtrl.hpp) and computes its gate rows' gradient.
template <class Cell, class Ctx, class T>
class CellStackExactRtrl {
 public:
  using Model = CellStackModel<Cell, Ctx, T>;

  CellStackExactRtrl(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st)
      : d_(d), st_(st), G_buf_(ctx.template alloc<T>(d.batch * d.n_carried())),
        packed_buf_(ctx.template alloc<T>(d.n_carried())),
        operand_buf_(ctx.template alloc<T>(d.layers > 1 ? operand_rows(d) * 2 * d.hidden : 0)),
        dense_buf_(ctx.template alloc<T>(dense_size(d))),
        G_(G_buf_.data()) {}

  // Per layer l: P_h^l (and P_c^l) [H, B C_<=l]; the contraction [B C_<L], its stream sum [C_<L],
  // the stacked operand [W_ih | W_hh]; the products over the own columns and over those below.
  static void declare(const CellNetDims& d, OnlineLayout& l) {
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H;
    for (index_t m = 0; m < d.layers; ++m) {
      const index_t layer = (Cell::kHasCellState ? 2 : 1) * H * B * d.carried_through(m);
      l.sensitivities += layer;
      l.layer_sensitivities.push_back(layer);
      l.products.push_back({GH, H, B * d.layer(m).n_carried()});
      if (m > 0) l.products.push_back({operand_rows(d), 2 * H, B * d.layer(m).carried_at});
    }
    l.workspace += B * d.n_carried() + d.n_carried() + (d.layers > 1 ? operand_rows(d) * 2 * H : 0) +
                   dense_size(d);
  }

  // The eLSTM's w_hh as a dense [G H, H] matrix, the left operand of its own columns' product.
  static index_t dense_size(const CellNetDims& d) {
    return d.cell == CellKind::elstm ? d.gates() * d.hidden * d.hidden : 0;
  }

  // Rows of the product over the columns of the layers below (GRU keeps the n gate's sides apart).
  static index_t operand_rows(const CellNetDims& d) {
    return (d.gates() + (d.cell == CellKind::gru ? 1 : 0)) * d.hidden;
  }

  void propagate(Ctx& ctx, const Model& m, T* step_grad) {
    if (d_.alpha != 1.0) run<true>(ctx, m, step_grad);
    else run<false>(ctx, m, step_grad);
  }

  void add_checks(StepCheck<T>& c) const {
    const index_t B = d_.batch, H = d_.hidden;
    for (index_t l = 0; l < d_.layers; ++l) {
      const index_t ld = B * d_.carried_through(l);
      for (index_t m = 0; m <= l; ++m) {
        const CellLayerDims dm = d_.layer(m);
        const index_t at = B * dm.carried_at, n = dm.n_carried();
        if (l == d_.layers - 1) c.watched.push_back(StreamBlock<const T>{G_ + at, 1, 0, n, n});
        c.reset.push_back(StreamBlock<T>{st_.P_h[l] + at, H, ld, n, n});
        if (st_.P_c) c.reset.push_back(StreamBlock<T>{st_.P_c[l] + at, H, ld, n, n});
      }
    }
  }

  template <class S>
  void carry(S& s) {
    for (index_t l = 0; l < d_.layers; ++l) {
      const index_t n = d_.hidden * d_.batch * d_.carried_through(l);
      s.device(st_.P_h[l], n);
      if (st_.P_c) s.device(st_.P_c[l], n);
    }
  }

 private:
  template <bool kLeaky>
  void run(Ctx& ctx, const Model& m, T* step_grad) {
    const CellNetDims& d = d_;
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H, top = d.layers - 1;
    T* G = G_;
    for (index_t l = 0; l < d.layers; ++l) {
      const CellLayerDims dl = d.layer(l);
      const CellLayerStep<T>& s = m.step(l);
      const index_t ld = B * d.carried_through(l), own_at = B * dl.carried_at, W = dl.width();
      T* P_h = st_.P_h[l];
      T* P_c = st_.P_c ? st_.P_c[l] : nullptr;
      const bool contract = l == top;
      auto step_of = [&](index_t at, index_t per_stream, index_t q0, const T* Q, index_t ldq,
                         const T* v) {
        return CellSensitivityStep<T>{dl, per_stream, ld, q0, Q, ldq, s.coef, v,
                                      contract ? s.delta_h : nullptr, P_h + at,
                                      P_c ? P_c + at : nullptr, contract ? G + at : nullptr};
      };
      // Own columns (s, g', k), r = s n_g + g' - g0, counted from own_at.
      const T* w_hh = st_.params + dl.off_w_hh();
      const T* h_prev = st_.h + l * B * H;
      if (dl.elementwise()) {
        ctx.for_each_2d(GH, H, DenseDiagonal<T>{H, w_hh, dense_buf_.data()});
        w_hh = dense_buf_.data();
      }
      ctx.template for_product_blocks<T>(GH, H, B * dl.n_carried(), w_hh, H, P_h + own_at, ld,
                                         [&](index_t q0, index_t cols, T* Q, index_t ldq) {
        ctx.for_each_serial_k(q0, q0 + cols, W, 1, AddCellImmediateTerm<T>{dl, q0, ldq, s.v, Q, h_prev});
        const CellSensitivityStep<T> a = step_of(own_at, dl.n_carried(), q0, Q, ldq, s.v);
        if (contract)
          ctx.for_each_serial_k(q0, q0 + cols, dl.n_carried(), H, CellSensitivity<Cell, T, true, false, kLeaky>{a});
        else
          ctx.for_each_serial_k(q0, q0 + cols, dl.n_carried(), H, CellSensitivity<Cell, T, false, false, kLeaky>{a});
      });
      if (l == 0) continue;
      // The columns of the layers below: [W_ih | W_hh] over [P_h^{l-1}(t); P_h^l(t-1)].
      T* A = operand_buf_.data();
      ctx.for_each_2d(operand_rows(d), 2 * H, StackedOperand<T>{dl, st_.params, A});
      const ProductSlabs<T> slabs{st_.P_h[l - 1], B * d.carried_through(l - 1), H, P_h, ld, H};
      ctx.template for_product_blocks<T>(operand_rows(d), own_at, A, 2 * H, slabs,
                                         [&](index_t q0, index_t cols, T* Q, index_t ldq) {
        for (index_t mi = 0; mi < l; ++mi) {
          const CellLayerDims dm = d.layer(mi);
          const index_t at = B * dm.carried_at, n = dm.n_carried();
          const index_t lo = q0 > at ? q0 : at, hi = q0 + cols < at + B * n ? q0 + cols : at + B * n;
          if (lo >= hi) continue;
          const CellSensitivityStep<T> a = step_of(at, n, q0 - at, Q, ldq, nullptr);
          if (contract)
            ctx.for_each_serial_k(lo - at, hi - at, n, H, CellSensitivity<Cell, T, true, true, kLeaky>{a});
          else
            ctx.for_each_serial_k(lo - at, hi - at, n, H, CellSensitivity<Cell, T, false, true, kLeaky>{a});
        }
      });
    }
    T* packed = packed_buf_.data();
    for (index_t l = 0; l < d.layers; ++l) {
      const CellLayerDims dl = d.layer(l);
      const index_t n = dl.n_carried();
      ctx.for_each_serial_k(0, n, n, B, SumOverStreams<T>{n, G + B * dl.carried_at, packed + dl.carried_at});
      scatter_theta_gradient(ctx, dl, packed + dl.carried_at, step_grad);
    }
  }

  CellNetDims d_;
  CellNetState<T> st_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) G_buf_, packed_buf_, operand_buf_, dense_buf_;
  T* G_;  // [B C_<L] the top layer's contraction, column q as in its sensitivities
};

// Returns the optimizer's update count after the call; `events` receives what the non-finite check
// saw.
template <class Cell, class Ctx, class T>
std::int64_t cell_net_rtrl(Ctx& ctx, const CellNetDims& d, const CellNetState<T>& st,
                           const CellNetSequence<T>& seq, const CellNetOptions& opt,
                           NonfiniteEvents& events) {
  CellStackModel<Cell, Ctx, T> model(ctx, d, st, seq, opt);
  CellStackExactRtrl<Cell, Ctx, T> algorithm(ctx, d, st);
  const OnlineOptions loop{opt.update_each_step, opt.optimizer, opt.optimizer_step, opt.on_nonfinite,
                           opt.combine_gradient};
  return online_loop<T>(ctx, model, algorithm, loop, seq.steps, events);
}

}  // namespace rtrl
