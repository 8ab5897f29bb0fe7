// The CPU backend: the shared algorithms run on CpuContext, instantiated for float and double.
#include "rtrl/backend.hpp"

#include <cmath>

#include "cpu_context.hpp"
#include "rtrl/algo/cell_net_bptt.hpp"
#include "rtrl/algo/fully_recurrent_bptt.hpp"
#include "rtrl/algo/fully_recurrent_rtrl.hpp"
#include "rtrl/algo/optimizer_step.hpp"
#include "rtrl/algo/recurrent_layer.hpp"
#include "rtrl/algo/recurrent_layer_dispatch.hpp"
#include "rtrl/algo/cell_rtrl.hpp"
#include "rtrl/algo/cell_traces.hpp"
#include "rtrl/algo/cell_kf_rtrl.hpp"
#include "rtrl/algo/cell_uoro.hpp"
#include "rtrl/algo/fully_recurrent_kf_rtrl.hpp"
#include "rtrl/algo/fully_recurrent_uoro.hpp"
#include "rtrl/algo/fully_recurrent_traces.hpp"
#include "rtrl/algo/online_layouts.hpp"
#include "rtrl/algo/readout.hpp"

namespace rtrl {

template <class T>
std::int64_t CpuBackend::fully_recurrent_rtrl(std::uintptr_t, const FullyRecurrentDims& d,
                                              const FullyRecurrentState<T>& state,
                                              const FullyRecurrentSequence<T>& seq,
                                              const FullyRecurrentOptions& options,
                                              NonfiniteEvents& events) {
  CpuContext ctx;
  return rtrl::fully_recurrent_rtrl(ctx, d, state, seq, options, events);
}

template <class T>
void CpuBackend::fully_recurrent_bptt(std::uintptr_t, const FullyRecurrentDims& d,
                                      const FullyRecurrentBpttState<T>& state,
                                      const FullyRecurrentSequence<T>& seq, Activation activation,
                                      bool teacher_forcing, double loss_scale, NonfinitePolicy policy,
                                      NonfiniteEvents& events) {
  CpuContext ctx;
  rtrl::fully_recurrent_bptt(ctx, d, state, seq, activation, teacher_forcing, loss_scale, policy,
                             events);
}

template <class T>
bool CpuBackend::optimizer_step(std::uintptr_t, const OptimizerConfig& opt, std::int64_t step,
                                index_t count, T* param, T* grad, T* state) {
  CpuContext ctx;
  return optimizer_step_if_finite(ctx, opt, step, count, param, grad, state);
}

template <class T>
void CpuBackend::recurrent_layer_forward(std::uintptr_t, const LayerDims& d, const LayerWeights<T>& w,
                                         const LayerForward<T>& io, const LayerSaved<T>& saved) {
  CpuContext ctx;
  with_cell(d.cell, [&](auto cell) {
    rtrl::recurrent_layer_forward<decltype(cell)>(ctx, d, w, io, saved);
  });
}

template <class T>
void CpuBackend::recurrent_layer_backward(std::uintptr_t, const LayerDims& d,
                                          const LayerWeights<T>& w, const LayerForward<T>& io,
                                          const LayerSaved<T>& saved, const LayerGrads<T>& g) {
  CpuContext ctx;
  with_cell(d.cell, [&](auto cell) {
    rtrl::recurrent_layer_backward<decltype(cell)>(ctx, d, w, io, saved, g);
  });
}

template <class T>
std::int64_t CpuBackend::cell_net_rtrl(std::uintptr_t, const CellNetDims& d, const CellNetState<T>& state,
                                  const CellNetSequence<T>& seq, const CellNetOptions& options,
                                  NonfiniteEvents& events) {
  CpuContext ctx;
  std::int64_t updates = 0;
  with_cell(d.cell, [&](auto cell) {
    updates = rtrl::cell_net_rtrl<decltype(cell)>(ctx, d, state, seq, options, events);
  });
  return updates;
}

template <class T>
std::int64_t CpuBackend::fully_recurrent_traces(std::uintptr_t, const FullyRecurrentDims& d,
                                             const FullyRecurrentState<T>& state,
                                             const FullyRecurrentSequence<T>& seq,
                                             const FullyRecurrentOptions& options, TraceRule rule,
                                             NonfiniteEvents& events) {
  CpuContext ctx;
  const std::int64_t updates = rtrl::fully_recurrent_traces(ctx, d, state, seq, options, rule, events);
  return updates;
}

template <class T>
std::int64_t CpuBackend::cell_net_traces(std::uintptr_t, const CellNetDims& d, const CellNetState<T>& state,
                                      const CellNetSequence<T>& seq, const CellNetOptions& options,
                                      TraceRule rule, const T* feedback, NonfiniteEvents& events) {
  CpuContext ctx;
  std::int64_t updates = 0;
  with_cell(d.cell, [&](auto cell) {
    updates = rtrl::cell_net_traces<decltype(cell)>(ctx, d, state, seq, options, rule, feedback, events);
  });
  return updates;
}

template <class T>
std::int64_t CpuBackend::fully_recurrent_uoro(std::uintptr_t, const FullyRecurrentDims& d,
                                           const FullyRecurrentState<T>& state, T* tilde,
                                           const FullyRecurrentSequence<T>& seq,
                                           const FullyRecurrentOptions& options,
                                           const RandomStream& random, NonfiniteEvents& events) {
  CpuContext ctx;
  const std::int64_t updates = rtrl::fully_recurrent_uoro(ctx, d, state, tilde, seq, options, random, events);
  return updates;
}

template <class T>
std::int64_t CpuBackend::cell_net_uoro(std::uintptr_t, const CellNetDims& d, const CellNetState<T>& state,
                                    T* tangent, const CellNetSequence<T>& seq,
                                    const CellNetOptions& options, const RandomStream& random,
                                    NonfiniteEvents& events) {
  CpuContext ctx;
  std::int64_t updates = 0;
  with_cell(d.cell, [&](auto cell) {
    updates = rtrl::cell_net_uoro<decltype(cell)>(ctx, d, state, tangent, seq, options, random, events);
  });
  return updates;
}

template <class T>
std::int64_t CpuBackend::fully_recurrent_kf(std::uintptr_t, const FullyRecurrentDims& d,
                                         const FullyRecurrentState<T>& state, T* u,
                                         const FullyRecurrentSequence<T>& seq,
                                         const FullyRecurrentOptions& options,
                                         const RandomStream& random, NonfiniteEvents& events) {
  CpuContext ctx;
  const std::int64_t updates = rtrl::fully_recurrent_kf(ctx, d, state, u, seq, options, random, events);
  return updates;
}

// KF-RTRL's Kronecker form holds for the rnn and the LSTM only (the bindings refuse the others).
template <class T>
std::int64_t CpuBackend::cell_net_kf(std::uintptr_t, const CellNetDims& d, const CellNetState<T>& state,
                                  T* const* u, const CellNetSequence<T>& seq,
                                  const CellNetOptions& options, const RandomStream& random,
                                  NonfiniteEvents& events) {
  CpuContext ctx;
  std::int64_t updates = 0;
  if (d.cell == CellKind::lstm)
    updates = rtrl::cell_net_kf<LstmCell>(ctx, d, state, u, seq, options, random, events);
  else
    updates = rtrl::cell_net_kf<RnnCell>(ctx, d, state, u, seq, options, random, events);
  return updates;
}

template <class T>
void CpuBackend::cell_net_bptt(std::uintptr_t, const CellNetDims& d, const CellNetBpttState<T>& state,
                            const CellNetSequence<T>& seq, LossKind loss, double loss_scale,
                            NonfinitePolicy policy, NonfiniteEvents& events) {
  CpuContext ctx;
  with_cell(d.cell, [&](auto cell) {
    rtrl::cell_net_bptt<decltype(cell)>(ctx, d, state, seq, loss, loss_scale, policy, events);
  });
}

template <class T>
void CpuBackend::readout(std::uintptr_t, const ReadoutArgs<T>& args) {
  CpuContext ctx;
  readout_forward_backward(ctx, args);
}

template <class T>
void CpuBackend::reduce(std::uintptr_t, ReduceKind kind, index_t rows, index_t cols, T scale,
                        bool accumulate, const T* in, T* out) {
  CpuContext ctx;
  switch (kind) {
    case ReduceKind::row_sums:
      return ctx.row_sums(rows, cols, scale, in, out);
    case ReduceKind::column_sums:
      return ctx.column_sums(rows, cols, accumulate, in, out);
    case ReduceKind::norm2:
      return ctx.norm2(rows * cols, in, out);
  }
}

template <class T>
void CpuBackend::transpose(std::uintptr_t, index_t rows, index_t cols, const T* in, T* out) {
  CpuContext ctx;
  ctx.transpose(rows, cols, in, out);
}

template <class T>
index_t CpuBackend::find_nonfinite(std::uintptr_t, const T* data, index_t count, bool nan_ok) {
  for (index_t i = 0; i < count; ++i) {
    const T v = data[i];
    if (std::isinf(v) || (!nan_ok && std::isnan(v))) return i;
  }
  return -1;
}

template <class T>
index_t CpuBackend::find_bad_class(std::uintptr_t, const T* data, index_t count, index_t classes) {
  for (index_t i = 0; i < count; ++i)
    if (!valid_class(data[i], classes)) return i;
  return -1;
}

OnlineLayout CpuBackend::fully_recurrent_layout(OnlineAlgorithm algorithm, const FullyRecurrentDims& d,
                                           bool update, index_t state_rows) {
  return rtrl::fully_recurrent_layout<CpuContext>(algorithm, d, update, state_rows);
}

OnlineLayout CpuBackend::cell_net_layout(OnlineAlgorithm algorithm, const CellNetDims& d, bool update,
                                    index_t state_rows) {
  return rtrl::cell_net_layout<CpuContext>(algorithm, d, update, state_rows);
}

#define RTRL_INSTANTIATE(T)                                                                     \
  template std::int64_t CpuBackend::fully_recurrent_rtrl<T>(                                    \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentState<T>&,                 \
      const FullyRecurrentSequence<T>&, const FullyRecurrentOptions&, NonfiniteEvents&);                          \
  template void CpuBackend::fully_recurrent_bptt<T>(                                            \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentBpttState<T>&,             \
      const FullyRecurrentSequence<T>&, Activation, bool, double, NonfinitePolicy,              \
      NonfiniteEvents&);                              \
  template bool CpuBackend::optimizer_step<T>(std::uintptr_t, const OptimizerConfig&,           \
                                              std::int64_t, index_t, T*, T*, T*);         \
  template void CpuBackend::reduce<T>(std::uintptr_t, ReduceKind, index_t, index_t, T, bool,    \
                                      const T*, T*);                                            \
  template void CpuBackend::transpose<T>(std::uintptr_t, index_t, index_t, const T*, T*);    \
  template index_t CpuBackend::find_nonfinite<T>(std::uintptr_t, const T*, index_t, bool);   \
  template index_t CpuBackend::find_bad_class<T>(std::uintptr_t, const T*, index_t, index_t); \
  template void CpuBackend::recurrent_layer_forward<T>(std::uintptr_t, const LayerDims&,        \
                                                       const LayerWeights<T>&,                  \
                                                       const LayerForward<T>&,                  \
                                                       const LayerSaved<T>&);                   \
  template void CpuBackend::recurrent_layer_backward<T>(                                        \
      std::uintptr_t, const LayerDims&, const LayerWeights<T>&, const LayerForward<T>&,         \
      const LayerSaved<T>&, const LayerGrads<T>&);                                              \
  template std::int64_t CpuBackend::cell_net_rtrl<T>(std::uintptr_t, const CellNetDims&,             \
                                                const CellNetState<T>&,                         \
                                                const CellNetSequence<T>&,                      \
                                                const CellNetOptions&, NonfiniteEvents&);                         \
  template void CpuBackend::cell_net_bptt<T>(std::uintptr_t, const CellNetDims&,                        \
                                          const CellNetBpttState<T>&, const CellNetSequence<T>&,   \
                                          LossKind, double, NonfinitePolicy, NonfiniteEvents&);    \
  template std::int64_t CpuBackend::fully_recurrent_traces<T>(                                  \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentState<T>&,                 \
      const FullyRecurrentSequence<T>&, const FullyRecurrentOptions&, TraceRule,                \
      NonfiniteEvents&);                                                                        \
  template std::int64_t CpuBackend::cell_net_traces<T>(std::uintptr_t, const CellNetDims&,             \
                                                const CellNetState<T>&, const CellNetSequence<T>&,\
                                                const CellNetOptions&, TraceRule, const T*,     \
                                                NonfiniteEvents&);                              \
  template std::int64_t CpuBackend::fully_recurrent_uoro<T>(                                    \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentState<T>&, T*,             \
      const FullyRecurrentSequence<T>&, const FullyRecurrentOptions&, const RandomStream&,      \
      NonfiniteEvents&);                                                                        \
  template std::int64_t CpuBackend::cell_net_uoro<T>(std::uintptr_t, const CellNetDims&,               \
                                              const CellNetState<T>&, T*, const CellNetSequence<T>&,\
                                              const CellNetOptions&, const RandomStream&,       \
                                              NonfiniteEvents&);                                \
  template std::int64_t CpuBackend::fully_recurrent_kf<T>(                                      \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentState<T>&, T*,             \
      const FullyRecurrentSequence<T>&, const FullyRecurrentOptions&, const RandomStream&,      \
      NonfiniteEvents&);                                                                        \
  template std::int64_t CpuBackend::cell_net_kf<T>(std::uintptr_t, const CellNetDims&,                 \
                                            const CellNetState<T>&, T* const*,                  \
                                            const CellNetSequence<T>&, const CellNetOptions&,   \
                                            const RandomStream&, NonfiniteEvents&);             \
  template void CpuBackend::readout<T>(std::uintptr_t, const ReadoutArgs<T>&);

RTRL_INSTANTIATE(float)
RTRL_INSTANTIATE(double)

}  // namespace rtrl
