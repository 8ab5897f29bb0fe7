// The entry points each backend module provides, declared for the bindings (which are compiled by the
// host compiler for both modules) and defined by the backend: cpp/src/cpu_backend.cpp and
// cuda/cuda_backend.cu (and, for the tests, cpp/src/simt_backend.cpp). `stream` is the CUDA stream to
// run on (ignored on the CPU).
//
// Every pointer is to memory of the backend's device, laid out as documented in the algorithm headers.
#pragma once

#include <cstdint>

#include "rtrl/fully_recurrent.hpp"
#include "rtrl/nonfinite.hpp"
#include "rtrl/optimizer.hpp"
#include "rtrl/recurrent_layer.hpp"
#include "rtrl/cell_rtrl.hpp"
#include "rtrl/readout.hpp"
#include "rtrl/reduce.hpp"
#include "rtrl/algo/layout.hpp"
#include "rtrl/diagonal_traces.hpp"
#include "rtrl/uoro.hpp"
#include "rtrl/kf_rtrl.hpp"

namespace rtrl {


#define RTRL_DECLARE_BACKEND(Name)                                                                \
  struct Name {                                                                                   \
    template <class T>                                                                            \
    static std::int64_t fully_recurrent_rtrl(std::uintptr_t stream, const FullyRecurrentDims& d,  \
                                             const FullyRecurrentState<T>& state,                 \
                                             const FullyRecurrentSequence<T>& seq,                \
                                             const FullyRecurrentOptions& options,                \
                                             NonfiniteEvents& events);                            \
    template <class T>                                                                            \
    static void fully_recurrent_bptt(std::uintptr_t stream, const FullyRecurrentDims& d,          \
                                     const FullyRecurrentBpttState<T>& state,                     \
                                     const FullyRecurrentSequence<T>& seq, Activation activation, \
                                     bool teacher_forcing, double loss_scale,                     \
                                     NonfinitePolicy policy, NonfiniteEvents& events);            \
    /* One optimizer update; state: [opt.state_rows(), count] or null. Returns false (and     */ \
    /* leaves param and state as they were) when the update would make a parameter non-finite. */ \
    template <class T>                                                                            \
    static bool optimizer_step(std::uintptr_t stream, const OptimizerConfig& opt,                 \
                               std::int64_t step, index_t count, T* param, T* grad,         \
                               T* state);                                                         \
    /* One recurrent layer in one direction (recurrent_layer.hpp); backward needs the forward's  */ \
    /* io and saved buffers unchanged.                                                          */ \
    template <class T>                                                                            \
    static void recurrent_layer_forward(std::uintptr_t stream, const LayerDims& d,                \
                                        const LayerWeights<T>& w, const LayerForward<T>& io,      \
                                        const LayerSaved<T>& saved);                              \
    template <class T>                                                                            \
    static void recurrent_layer_backward(std::uintptr_t stream, const LayerDims& d,               \
                                         const LayerWeights<T>& w, const LayerForward<T>& io,     \
                                         const LayerSaved<T>& saved, const LayerGrads<T>& g);     \
    /* Exact RTRL for RecurrentNet (cell_rtrl.hpp); returns the optimizer's update count.       */ \
    template <class T>                                                                            \
    static std::int64_t cell_net_rtrl(std::uintptr_t stream, const CellNetDims& d,                \
                                       const CellNetState<T>& state,                              \
                                       const CellNetSequence<T>& seq,                             \
                                       const CellNetOptions& options,                             \
                                       NonfiniteEvents& events);                                  \
    /* SnAp-1 or e-prop (diagonal_traces.hpp): state.P holds the traces [B, n, L], for      */ \
    /* RecurrentNet state.P_h[l] (and P_c[l]) layer l's [B, N_l]; feedback: [O, H] or null.   */ \
    template <class T>                                                                            \
    static std::int64_t fully_recurrent_traces(std::uintptr_t stream, const FullyRecurrentDims& d,\
                                               const FullyRecurrentState<T>& state,               \
                                               const FullyRecurrentSequence<T>& seq,              \
                                               const FullyRecurrentOptions& options,              \
                                               TraceRule rule, NonfiniteEvents& events);          \
    template <class T>                                                                            \
    static std::int64_t cell_net_traces(std::uintptr_t stream, const CellNetDims& d,              \
                                        const CellNetState<T>& state,                             \
                                        const CellNetSequence<T>& seq,                            \
                                        const CellNetOptions& options, TraceRule rule,            \
                                        const T* feedback, NonfiniteEvents& events);              \
    /* UORO (uoro.hpp): state.P holds theta~ [B, n, L] and tilde s~ [B, n]; for RecurrentNet */ \
    /* state.P_h[l] layer l's theta~ [B, N_l] and tangent s~ [L, parts, B, H].                */ \
    template <class T>                                                                            \
    static std::int64_t fully_recurrent_uoro(std::uintptr_t stream, const FullyRecurrentDims& d,  \
                                             const FullyRecurrentState<T>& state, T* tilde,       \
                                             const FullyRecurrentSequence<T>& seq,                \
                                             const FullyRecurrentOptions& options,                \
                                             const RandomStream& random, NonfiniteEvents& events);\
    template <class T>                                                                            \
    static std::int64_t cell_net_uoro(std::uintptr_t stream, const CellNetDims& d,                \
                                      const CellNetState<T>& state, T* tangent,                   \
                                      const CellNetSequence<T>& seq,                              \
                                      const CellNetOptions& options, const RandomStream& random,  \
                                      NonfiniteEvents& events);                                   \
    /* KF-RTRL (kf_rtrl.hpp): state.P holds A [n, B n], u [B, L]; for RecurrentNet (rnn, lstm)*/ \
    /* state.P_h[l] (and P_c[l]) layer l's A [H, B G H] and u[l] its u [B, W_l].               */ \
    template <class T>                                                                            \
    static std::int64_t fully_recurrent_kf(std::uintptr_t stream, const FullyRecurrentDims& d,    \
                                           const FullyRecurrentState<T>& state, T* u,             \
                                           const FullyRecurrentSequence<T>& seq,                  \
                                           const FullyRecurrentOptions& options,                  \
                                           const RandomStream& random, NonfiniteEvents& events);  \
    template <class T>                                                                            \
    static std::int64_t cell_net_kf(std::uintptr_t stream, const CellNetDims& d,                  \
                                    const CellNetState<T>& state, T* const* u,                    \
                                    const CellNetSequence<T>& seq, const CellNetOptions& options, \
                                    const RandomStream& random, NonfiniteEvents& events);         \
    /* BPTT for RecurrentNet over one chunk (algo/cell_net_bptt.hpp).                          */ \
    template <class T>                                                                            \
    static void cell_net_bptt(std::uintptr_t stream, const CellNetDims& d,                        \
                              const CellNetBpttState<T>& state, const CellNetSequence<T>& seq,    \
                              LossKind loss, double loss_scale, NonfinitePolicy policy,           \
                              NonfiniteEvents& events);                                           \
    /* What an online learner's call holds and needs, in elements (algo/layout.hpp).          */ \
    static OnlineLayout fully_recurrent_layout(OnlineAlgorithm algorithm, const FullyRecurrentDims& d,\
                                               bool update, index_t state_rows);                  \
    static OnlineLayout cell_net_layout(OnlineAlgorithm algorithm, const CellNetDims& d,          \
                                        bool update, index_t state_rows);                         \
    /* The readout, its loss and backward over R rows (readout.hpp).                           */ \
    template <class T>                                                                            \
    static void readout(std::uintptr_t stream, const ReadoutArgs<T>& args);                      \
    /* One of the context's reductions (reduce.hpp), a test hook: row_sums of in [rows, cols]    */ \
    /* into out [rows] (times scale), column_sums into out [cols] (added when accumulate), norm2 */ \
    /* of in [rows * cols] into out [1].                                                       */ \
    template <class T>                                                                            \
    static void reduce(std::uintptr_t stream, ReduceKind kind, index_t rows, index_t cols,       \
                       T scale, bool accumulate, const T* in, T* out);                           \
    /* The context's transpose, a test hook: out [cols, rows] = in [rows, cols] transposed.      */ \
    template <class T>                                                                            \
    static void transpose(std::uintptr_t stream, index_t rows, index_t cols, const T* in, T* out);\
    /* Index of the first element that is +-inf (or NaN when nan_ok is false), or -1. */          \
    template <class T>                                                                            \
    static index_t find_nonfinite(std::uintptr_t stream, const T* data, index_t count,            \
                                  bool nan_ok);                                                   \
    /* Index of the first cross-entropy target that is not -1 or a class in [0, classes)          */ \
    /* (valid_class, readout.hpp), or -1.                                                      */ \
    template <class T>                                                                            \
    static index_t find_bad_class(std::uintptr_t stream, const T* data, index_t count,            \
                                  index_t classes);                                               \
  };

RTRL_DECLARE_BACKEND(CpuBackend)
RTRL_DECLARE_BACKEND(CudaBackend)
RTRL_DECLARE_BACKEND(SimtBackend)  // the CPU backend's source on the SIMT host context (tests)

#undef RTRL_DECLARE_BACKEND

}  // namespace rtrl
