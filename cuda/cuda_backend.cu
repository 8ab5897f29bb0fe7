// The CUDA backend: the shared algorithms run on CudaContext, instantiated for float and double.
#include <cmath>

#include "cuda_context.cuh"
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
#include "rtrl/backend.hpp"

namespace rtrl {

template <class T>
std::int64_t CudaBackend::fully_recurrent_rtrl(std::uintptr_t stream, const FullyRecurrentDims& d,
                                               const FullyRecurrentState<T>& state,
                                               const FullyRecurrentSequence<T>& seq,
                                               const FullyRecurrentOptions& options,
                                              NonfiniteEvents& events) {
  CudaContext ctx(stream);
  const std::int64_t updates = rtrl::fully_recurrent_rtrl(ctx, d, state, seq, options, events);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return updates;
}

template <class T>
void CudaBackend::fully_recurrent_bptt(std::uintptr_t stream, const FullyRecurrentDims& d,
                                       const FullyRecurrentBpttState<T>& state,
                                       const FullyRecurrentSequence<T>& seq, Activation activation,
                                       bool teacher_forcing, double loss_scale, NonfinitePolicy policy,
                                       NonfiniteEvents& events) {
  CudaContext ctx(stream);
  rtrl::fully_recurrent_bptt(ctx, d, state, seq, activation, teacher_forcing, loss_scale, policy,
                             events);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
}

template <class T>
bool CudaBackend::optimizer_step(std::uintptr_t stream, const OptimizerConfig& opt,
                                 std::int64_t step, index_t count, T* param, T* grad, T* state) {
  CudaContext ctx(stream);
  const bool kept = optimizer_step_if_finite(ctx, opt, step, count, param, grad, state);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return kept;
}

template <class T>
void CudaBackend::recurrent_layer_forward(std::uintptr_t stream, const LayerDims& d,
                                          const LayerWeights<T>& w, const LayerForward<T>& io,
                                          const LayerSaved<T>& saved) {
  CudaContext ctx(stream);
  with_cell(d.cell, [&](auto cell) {
    rtrl::recurrent_layer_forward<decltype(cell)>(ctx, d, w, io, saved);
  });
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
}

template <class T>
void CudaBackend::recurrent_layer_backward(std::uintptr_t stream, const LayerDims& d,
                                           const LayerWeights<T>& w, const LayerForward<T>& io,
                                           const LayerSaved<T>& saved, const LayerGrads<T>& g) {
  CudaContext ctx(stream);
  with_cell(d.cell, [&](auto cell) {
    rtrl::recurrent_layer_backward<decltype(cell)>(ctx, d, w, io, saved, g);
  });
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
}

template <class T>
std::int64_t CudaBackend::cell_net_rtrl(std::uintptr_t stream, const CellNetDims& d, const CellNetState<T>& state,
                                  const CellNetSequence<T>& seq, const CellNetOptions& options,
                                  NonfiniteEvents& events) {
  CudaContext ctx(stream);
  std::int64_t updates = 0;
  with_cell(d.cell, [&](auto cell) {
    updates = rtrl::cell_net_rtrl<decltype(cell)>(ctx, d, state, seq, options, events);
  });
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return updates;
}

template <class T>
std::int64_t CudaBackend::fully_recurrent_traces(std::uintptr_t stream, const FullyRecurrentDims& d,
                                             const FullyRecurrentState<T>& state,
                                             const FullyRecurrentSequence<T>& seq,
                                             const FullyRecurrentOptions& options, TraceRule rule,
                                             NonfiniteEvents& events) {
  CudaContext ctx(stream);
  const std::int64_t updates = rtrl::fully_recurrent_traces(ctx, d, state, seq, options, rule, events);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return updates;
}

template <class T>
std::int64_t CudaBackend::cell_net_traces(std::uintptr_t stream, const CellNetDims& d, const CellNetState<T>& state,
                                      const CellNetSequence<T>& seq, const CellNetOptions& options,
                                      TraceRule rule, const T* feedback, NonfiniteEvents& events) {
  CudaContext ctx(stream);
  std::int64_t updates = 0;
  with_cell(d.cell, [&](auto cell) {
    updates = rtrl::cell_net_traces<decltype(cell)>(ctx, d, state, seq, options, rule, feedback, events);
  });
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return updates;
}

template <class T>
std::int64_t CudaBackend::fully_recurrent_uoro(std::uintptr_t stream, const FullyRecurrentDims& d,
                                           const FullyRecurrentState<T>& state, T* tilde,
                                           const FullyRecurrentSequence<T>& seq,
                                           const FullyRecurrentOptions& options,
                                           const RandomStream& random, NonfiniteEvents& events) {
  CudaContext ctx(stream);
  const std::int64_t updates = rtrl::fully_recurrent_uoro(ctx, d, state, tilde, seq, options, random, events);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return updates;
}

template <class T>
std::int64_t CudaBackend::cell_net_uoro(std::uintptr_t stream, const CellNetDims& d, const CellNetState<T>& state,
                                    T* tangent, const CellNetSequence<T>& seq,
                                    const CellNetOptions& options, const RandomStream& random,
                                    NonfiniteEvents& events) {
  CudaContext ctx(stream);
  std::int64_t updates = 0;
  with_cell(d.cell, [&](auto cell) {
    updates = rtrl::cell_net_uoro<decltype(cell)>(ctx, d, state, tangent, seq, options, random, events);
  });
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return updates;
}

template <class T>
std::int64_t CudaBackend::fully_recurrent_kf(std::uintptr_t stream, const FullyRecurrentDims& d,
                                         const FullyRecurrentState<T>& state, T* u,
                                         const FullyRecurrentSequence<T>& seq,
                                         const FullyRecurrentOptions& options,
                                         const RandomStream& random, NonfiniteEvents& events) {
  CudaContext ctx(stream);
  const std::int64_t updates = rtrl::fully_recurrent_kf(ctx, d, state, u, seq, options, random, events);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return updates;
}

// KF-RTRL's Kronecker form holds for the rnn and the LSTM only (the bindings refuse the others).
template <class T>
std::int64_t CudaBackend::cell_net_kf(std::uintptr_t stream, const CellNetDims& d, const CellNetState<T>& state,
                                  T* const* u, const CellNetSequence<T>& seq,
                                  const CellNetOptions& options, const RandomStream& random,
                                  NonfiniteEvents& events) {
  CudaContext ctx(stream);
  std::int64_t updates = 0;
  if (d.cell == CellKind::lstm)
    updates = rtrl::cell_net_kf<LstmCell>(ctx, d, state, u, seq, options, random, events);
  else
    updates = rtrl::cell_net_kf<RnnCell>(ctx, d, state, u, seq, options, random, events);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return updates;
}

template <class T>
void CudaBackend::cell_net_bptt(std::uintptr_t stream, const CellNetDims& d, const CellNetBpttState<T>& state,
                            const CellNetSequence<T>& seq, LossKind loss, double loss_scale,
                            NonfinitePolicy policy, NonfiniteEvents& events) {
  CudaContext ctx(stream);
  with_cell(d.cell, [&](auto cell) {
    rtrl::cell_net_bptt<decltype(cell)>(ctx, d, state, seq, loss, loss_scale, policy, events);
  });
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
}

template <class T>
void CudaBackend::readout(std::uintptr_t stream, const ReadoutArgs<T>& args) {
  CudaContext ctx(stream);
  readout_forward_backward(ctx, args);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
}

// first[0] = the smallest index whose value is +-inf (or NaN unless nan_ok).
template <class T>
struct FirstNonFinite {
  const T* data;
  bool nan_ok;
  unsigned long long* first;
  __device__ void operator()(index_t i) const {
    const T v = data[i];
    if (isinf(v) || (!nan_ok && isnan(v))) atomicMin(first, static_cast<unsigned long long>(i));
  }
};

// first[0] = the smallest index whose value is not a usable class (valid_class).
template <class T>
struct FirstBadClass {
  const T* data;
  index_t classes;
  unsigned long long* first;
  __device__ void operator()(index_t i) const {
    if (!valid_class(data[i], classes)) atomicMin(first, static_cast<unsigned long long>(i));
  }
};

// The smallest index the functor `scan` flags among [0, count), or -1 (scan.first is set here).
template <class Scan>
static index_t first_flagged(CudaContext& ctx, index_t count, Scan scan) {
  auto first = ctx.alloc<unsigned long long>(1);
  const unsigned long long none = ~0ull;
  RTRL_CUDA_CHECK(cudaMemcpyAsync(first.data(), &none, sizeof(none), cudaMemcpyHostToDevice, ctx.stream()));
  scan.first = first.data();
  ctx.for_each(count, scan);
  unsigned long long host = none;
  RTRL_CUDA_CHECK(cudaMemcpyAsync(&host, first.data(), sizeof(host), cudaMemcpyDeviceToHost, ctx.stream()));
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
  return host == none ? index_t(-1) : index_t(host);
}

template <class T>
void CudaBackend::reduce(std::uintptr_t stream, ReduceKind kind, index_t rows, index_t cols,
                         T scale, bool accumulate, const T* in, T* out) {
  CudaContext ctx(stream);
  switch (kind) {
    case ReduceKind::row_sums:
      ctx.row_sums(rows, cols, scale, in, out);
      break;
    case ReduceKind::column_sums:
      ctx.column_sums(rows, cols, accumulate, in, out);
      break;
    case ReduceKind::norm2:
      ctx.norm2(rows * cols, in, out);
      break;
  }
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
}

template <class T>
void CudaBackend::transpose(std::uintptr_t stream, index_t rows, index_t cols, const T* in, T* out) {
  CudaContext ctx(stream);
  ctx.transpose(rows, cols, in, out);
  RTRL_CUDA_CHECK(cudaStreamSynchronize(ctx.stream()));
}

template <class T>
index_t CudaBackend::find_nonfinite(std::uintptr_t stream, const T* data, index_t count,
                                    bool nan_ok) {
  CudaContext ctx(stream);
  return first_flagged(ctx, count, FirstNonFinite<T>{data, nan_ok, nullptr});
}

template <class T>
index_t CudaBackend::find_bad_class(std::uintptr_t stream, const T* data, index_t count,
                                    index_t classes) {
  CudaContext ctx(stream);
  return first_flagged(ctx, count, FirstBadClass<T>{data, classes, nullptr});
}

OnlineLayout CudaBackend::fully_recurrent_layout(OnlineAlgorithm algorithm, const FullyRecurrentDims& d,
                                           bool update, index_t state_rows) {
  return rtrl::fully_recurrent_layout<CudaContext>(algorithm, d, update, state_rows);
}

OnlineLayout CudaBackend::cell_net_layout(OnlineAlgorithm algorithm, const CellNetDims& d, bool update,
                                    index_t state_rows) {
  return rtrl::cell_net_layout<CudaContext>(algorithm, d, update, state_rows);
}

#define RTRL_INSTANTIATE(T)                                                                     \
  template std::int64_t CudaBackend::fully_recurrent_rtrl<T>(                                   \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentState<T>&,                 \
      const FullyRecurrentSequence<T>&, const FullyRecurrentOptions&, NonfiniteEvents&);                          \
  template void CudaBackend::fully_recurrent_bptt<T>(                                           \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentBpttState<T>&,             \
      const FullyRecurrentSequence<T>&, Activation, bool, double, NonfinitePolicy,              \
      NonfiniteEvents&);                              \
  template bool CudaBackend::optimizer_step<T>(std::uintptr_t, const OptimizerConfig&,          \
                                               std::int64_t, index_t, T*, T*, T*);              \
  template void CudaBackend::reduce<T>(std::uintptr_t, ReduceKind, index_t, index_t, T, bool,   \
                                       const T*, T*);                                           \
  template void CudaBackend::transpose<T>(std::uintptr_t, index_t, index_t, const T*, T*);   \
  template index_t CudaBackend::find_nonfinite<T>(std::uintptr_t, const T*, index_t, bool);  \
  template index_t CudaBackend::find_bad_class<T>(std::uintptr_t, const T*, index_t, index_t); \
  template void CudaBackend::recurrent_layer_forward<T>(std::uintptr_t, const LayerDims&,       \
                                                        const LayerWeights<T>&,                 \
                                                        const LayerForward<T>&,                 \
                                                        const LayerSaved<T>&);                  \
  template void CudaBackend::recurrent_layer_backward<T>(                                       \
      std::uintptr_t, const LayerDims&, const LayerWeights<T>&, const LayerForward<T>&,         \
      const LayerSaved<T>&, const LayerGrads<T>&);                                              \
  template std::int64_t CudaBackend::cell_net_rtrl<T>(std::uintptr_t, const CellNetDims&,             \
                                                const CellNetState<T>&,                         \
                                                const CellNetSequence<T>&,                      \
                                                const CellNetOptions&, NonfiniteEvents&);                         \
  template void CudaBackend::cell_net_bptt<T>(std::uintptr_t, const CellNetDims&,                        \
                                          const CellNetBpttState<T>&, const CellNetSequence<T>&,   \
                                          LossKind, double, NonfinitePolicy, NonfiniteEvents&);    \
  template std::int64_t CudaBackend::fully_recurrent_traces<T>(                                  \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentState<T>&,                 \
      const FullyRecurrentSequence<T>&, const FullyRecurrentOptions&, TraceRule,                \
      NonfiniteEvents&);                                                                        \
  template std::int64_t CudaBackend::cell_net_traces<T>(std::uintptr_t, const CellNetDims&,             \
                                                const CellNetState<T>&, const CellNetSequence<T>&,\
                                                const CellNetOptions&, TraceRule, const T*,     \
                                                NonfiniteEvents&);                              \
  template std::int64_t CudaBackend::fully_recurrent_uoro<T>(                                    \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentState<T>&, T*,             \
      const FullyRecurrentSequence<T>&, const FullyRecurrentOptions&, const RandomStream&,      \
      NonfiniteEvents&);                                                                        \
  template std::int64_t CudaBackend::cell_net_uoro<T>(std::uintptr_t, const CellNetDims&,               \
                                              const CellNetState<T>&, T*, const CellNetSequence<T>&,\
                                              const CellNetOptions&, const RandomStream&,       \
                                              NonfiniteEvents&);                                \
  template std::int64_t CudaBackend::fully_recurrent_kf<T>(                                      \
      std::uintptr_t, const FullyRecurrentDims&, const FullyRecurrentState<T>&, T*,             \
      const FullyRecurrentSequence<T>&, const FullyRecurrentOptions&, const RandomStream&,      \
      NonfiniteEvents&);                                                                        \
  template std::int64_t CudaBackend::cell_net_kf<T>(std::uintptr_t, const CellNetDims&,                 \
                                            const CellNetState<T>&, T* const*,                  \
                                            const CellNetSequence<T>&, const CellNetOptions&,   \
                                            const RandomStream&, NonfiniteEvents&);             \
  template void CudaBackend::readout<T>(std::uintptr_t, const ReadoutArgs<T>&);

RTRL_INSTANTIATE(float)
RTRL_INSTANTIATE(double)

}  // namespace rtrl
