// Exact RTRL for the fully recurrent network (DESIGN §3.1), all streams at once, on the one online
// loop (online_loop.hpp): the network is the model, exact RTRL the algorithm.
//
// Per step the model runs the forward step (teacher forcing included); the algorithm then, for each
// block of P's columns (ctx.for_product_blocks: the context takes Q = W_U P[:, block] its own way —
// panels in cache on the CPU, one cuBLAS call per large block on CUDA — and runs blocks in parallel
// where it pays), adds the immediate term (n L values per stream, into Q) and runs one pass over the
// block that multiplies by f', zeroes forced units, writes P in place and the per-column error
// contraction G (each stream's part of the step's gradient); then sums G over streams (with one
// stream G is the step's gradient).
#pragma once

#include <cstdint>

#include "rtrl/algo/fully_recurrent_forward.hpp"
#include "rtrl/algo/online_loop.hpp"

namespace rtrl {

// The fully recurrent network as the online loop's model.
template <class Ctx, class T>
class FullyRecurrentModel {
 public:
  using Context = Ctx;

  FullyRecurrentModel(Ctx& ctx, const FullyRecurrentDims& d, const FullyRecurrentState<T>& st,
                      const FullyRecurrentSequence<T>& seq, const FullyRecurrentOptions& opt)
      : d_(d), st_(st), seq_(seq), opt_(opt), z_buf_(ctx.template alloc<T>(2 * d.batch * d.width())),
        unit_buf_(ctx.template alloc<T>(5 * d.batch * d.units)) {
    const index_t Bn = d.batch * d.units;
    T* u = unit_buf_.data();
    u_ = UnitScratch<T>{u, u + Bn, u + 2 * Bn, u + 3 * Bn, u + 4 * Bn};
    z_t_ = z_buf_.data();
    z_next_ = z_t_ + d.batch * d.width();
  }

  static void declare(const FullyRecurrentDims& d, OnlineLayout& l) {
    l.state += d.batch * d.units;
    l.workspace += 2 * d.batch * d.width() + 5 * d.batch * d.units;
    l.carried += 2 * d.batch * d.width();
  }

  const FullyRecurrentDims& dims() const { return d_; }
  index_t n_params() const { return d_.n_weights(); }
  index_t streams() const { return d_.batch; }
  T* params() const { return st_.weight; }
  T* grad() const { return st_.grad; }
  T* opt_state() const { return st_.opt_state; }
  T loss_scale() const { return T(opt_.loss_scale); }
  bool teacher_forcing() const { return opt_.teacher_forcing; }
  const T* z() const { return z_t_; }
  const UnitScratch<T>& units() const { return u_; }

  void begin(Ctx& ctx) { ctx.for_each(d_.batch * d_.units, UnitsOfZ<T>{d_, true, z_t_, st_.y}); }

  void forward(Ctx& ctx, index_t t, T*) {
    const index_t B = d_.batch;
    const T* target_t = seq_.target ? seq_.target + t * B * d_.outputs : nullptr;
    fully_recurrent_forward_step(ctx, d_, opt_.activation, opt_.teacher_forcing, loss_scale(),
                                 st_.weight, seq_.x + t * B * d_.inputs, target_t, z_t_, z_next_, u_,
                                 seq_.outputs + t * B * d_.outputs, seq_.loss + t);
  }

  // pre, slope and error are adjacent in unit_buf: [3, B, n].
  void add_checks(StepCheck<T>& c) const {
    const index_t B = d_.batch, n = d_.units;
    c.ranges.push_back({u_.pre, 3 * B * n});
    c.watched.push_back(StreamBlock<const T>{u_.pre, 3, B * n, n, n});
    c.reset.push_back(StreamBlock<T>{z_next_ + d_.recurrent_offset(), 1, 0, d_.width(), n});
  }

  void advance(Ctx&) { std::swap(z_t_, z_next_); }

  // Within a call the state is z(t), in whichever of the two buffers advance() left it.
  template <class S>
  void carry(S& s) {
    s.device(z_buf_.data(), 2 * d_.batch * d_.width());
    s.host(z_t_);
    s.host(z_next_);
  }

  void end(Ctx& ctx) { ctx.for_each(d_.batch * d_.units, UnitsOfZ<T>{d_, false, z_t_, st_.y}); }

 private:
  FullyRecurrentDims d_;
  FullyRecurrentState<T> st_;
  FullyRecurrentSequence<T> seq_;
  FullyRecurrentOptions opt_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) z_buf_, unit_buf_;
  UnitScratch<T> u_;
  T* z_t_;
  T* z_next_;
};

// Exact RTRL's sensitivities P [n, B N] of the fully recurrent network.
template <class Ctx, class T>
class FullyRecurrentExactRtrl {
 public:
  FullyRecurrentExactRtrl(Ctx& ctx, const FullyRecurrentDims& d, T* P)
      : d_(d), P_(P), G_buf_(ctx.template alloc<T>(streams_gradient(d))) {}

  // P [n, B, n_c, L]; the streams' parts of the gradient [B N_c] (B > 1); the product W_U P.
  static index_t streams_gradient(const FullyRecurrentDims& d) {
    return d.batch > 1 ? d.batch * d.carried() : 0;
  }
  static void declare(const FullyRecurrentDims& d, OnlineLayout& l) {
    l.sensitivities += d.units * d.batch * d.carried();
    l.workspace += streams_gradient(d);
    l.products.push_back({d.units, d.units, d.batch * d.carried()});
  }

  void propagate(Ctx& ctx, const FullyRecurrentModel<Ctx, T>& m, T* step_grad) {
    const FullyRecurrentDims& d = d_;
    const index_t B = d.batch, n = d.units, L = d.width(), N = d.carried(), at = d.shard_row0 * L;
    const T scale = m.loss_scale();
    const T* z_t = m.z();
    const UnitScratch<T>& u = m.units();
    const T* W_U = m.params() + d.recurrent_offset();
    const index_t contracted = d.outputs > 0 ? d.outputs : 1;  // units with errors (at least one row)
    if (N != d.n_weights()) {  // a shard: the other rows' gradient is the other processes'
      ctx.for_each(at, Fill<T>{T(0), step_grad});
      ctx.for_each(d.n_weights() - at - N, Fill<T>{T(0), step_grad + at + N});
    }
    T* G = B > 1 ? G_buf_.data() : step_grad + at;  // the streams' parts of the step's gradient
    T* P = P_;
    G_ = G;
    // P's columns in groups of L (one weight row i of one stream), r = s n_c + i - i0.
    ctx.template for_product_blocks<T>(n, n, B * N, W_U, L, P, B * N,
                                       [&](index_t q0, index_t cols, T* Q, index_t ldq) {
      ctx.for_each_serial_k(q0, q0 + cols, L, 1, AddImmediateTerm<T>{d, q0, ldq, z_t, Q});
      ctx.for_each_serial_k(q0, q0 + cols, N, contracted,
                            SensitivityUpdate<T, true>{d, -scale, 0, q0, Q, ldq, u.slope, u.error,
                                                       u.keep, P, G});
      ctx.for_each_serial_k(q0, q0 + cols, N, n - contracted,
                            SensitivityUpdate<T, false>{d, -scale, contracted, q0, Q, ldq, u.slope,
                                                        u.error, u.keep, P, G});
    });
    if (B > 1) ctx.for_each_serial_k(0, N, N, B, SumOverStreams<T>{N, G, step_grad + at});
  }

  void add_checks(StepCheck<T>& c) const {
    const index_t N = d_.carried();
    c.watched.push_back(StreamBlock<const T>{G_, 1, 0, N, N});
    c.reset.push_back(StreamBlock<T>{P_, d_.units, d_.batch * N, N, N});
  }

  template <class S>
  void carry(S& s) { s.device(P_, d_.units * d_.batch * d_.carried()); }

 private:
  FullyRecurrentDims d_;
  T* P_;
  decltype(std::declval<Ctx&>().template alloc<T>(0)) G_buf_;
  T* G_ = nullptr;
};

// Returns the number of optimizer updates applied so far (options.optimizer_step + updates made);
// `events` receives what the non-finite check saw.
template <class Ctx, class T>
std::int64_t fully_recurrent_rtrl(Ctx& ctx, const FullyRecurrentDims& d,
                                  const FullyRecurrentState<T>& st,
                                  const FullyRecurrentSequence<T>& seq,
                                  const FullyRecurrentOptions& opt, NonfiniteEvents& events) {
  FullyRecurrentModel<Ctx, T> model(ctx, d, st, seq, opt);
  FullyRecurrentExactRtrl<Ctx, T> algorithm(ctx, d, st.P);
  const OnlineOptions loop{opt.update_each_step, opt.optimizer, opt.optimizer_step, opt.on_nonfinite,
                           opt.combine_gradient};
  return online_loop<T>(ctx, model, algorithm, loop, seq.steps, events);
}

}  // namespace rtrl
