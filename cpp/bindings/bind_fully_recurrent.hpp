// Python bindings of the fully recurrent network's algorithms, one body for both backend modules.
#pragma once

#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>

#include "array_ref.hpp"
#include "rtrl/backend.hpp"

namespace rtrl {

struct FullyRecurrentConfig {
  FullyRecurrentDims dims;
  Activation activation = Activation::logistic;
  bool teacher_forcing = false;
  double loss_scale = 1.0;
};

inline FullyRecurrentConfig make_fully_recurrent_config(index_t units, index_t inputs, bool bias,
                                                        index_t outputs, index_t batch,
                                                        const std::string& activation,
                                                        bool teacher_forcing,
                                                        const std::string& reduction,
                                                        index_t shard_row0, index_t shard_rows) {
  RTRL_CHECK(units >= 1, "n_units: expected a positive integer, got " + std::to_string(units));
  RTRL_CHECK(inputs >= 0, "n_inputs: expected a non-negative integer, got " + std::to_string(inputs));
  RTRL_CHECK(outputs >= 0 && outputs <= units,
             "n_outputs: expected an integer in [0, n_units=" + std::to_string(units) + "], got " +
                 std::to_string(outputs));
  RTRL_CHECK(batch >= 1, "batch_size: expected a positive integer, got " + std::to_string(batch));
  FullyRecurrentConfig c;
  c.dims = FullyRecurrentDims{units, inputs, bias ? 1 : 0, outputs, batch};
  RTRL_CHECK(shard_rows == -1 ? shard_row0 == 0
                              : shard_rows >= 1 && shard_row0 >= 0 && shard_row0 + shard_rows <= units,
             "shard: expected weight rows [row0, row0 + rows) within [0, n_units=" + std::to_string(units) +
                 "), got row0=" + std::to_string(shard_row0) + ", rows=" + std::to_string(shard_rows));
  c.dims.shard_row0 = shard_row0;
  c.dims.shard_rows = shard_rows;
  if (activation == "logistic") c.activation = Activation::logistic;
  else if (activation == "tanh") c.activation = Activation::tanh;
  else throw std::invalid_argument("activation: expected 'logistic' or 'tanh', got '" + activation + "'");
  if (reduction == "mean") c.loss_scale = 1.0 / double(batch);
  else if (reduction == "sum") c.loss_scale = 1.0;
  else throw std::invalid_argument("reduction: expected 'mean' or 'sum', got '" + reduction + "'");
  c.teacher_forcing = teacher_forcing;
  // BLAS takes 32-bit sizes: the widest matrix is P, [n, B N].
  const double width = double(batch) * double(c.dims.n_weights());
  RTRL_CHECK(width < 2147483647.0,
             "batch_size * n_units * (n_inputs + bias + n_units) = " + std::to_string(width) +
                 " exceeds the 32-bit index range of the BLAS; use fewer streams or units");
  return c;
}

inline OptimizerConfig make_optimizer_config(const std::string& kind, double lr, double momentum,
                                             double beta1, double beta2, double eps,
                                             double max_grad_norm) {
  OptimizerConfig o;
  if (kind == "none") o.kind = OptimizerKind::none;
  else if (kind == "sgd") o.kind = OptimizerKind::sgd;
  else if (kind == "adam") o.kind = OptimizerKind::adam;
  else throw std::invalid_argument("optimizer: expected 'none', 'sgd' or 'adam', got '" + kind + "'");
  o.lr = lr;
  o.momentum = momentum;
  o.beta1 = beta1;
  o.beta2 = beta2;
  o.eps = eps;
  o.max_grad_norm = max_grad_norm;
  return o;
}

inline OnlineAlgorithm parse_online_algorithm(const std::string& name) {
  if (name == "exact") return OnlineAlgorithm::exact;
  if (name == "snap1") return OnlineAlgorithm::snap1;
  if (name == "eprop") return OnlineAlgorithm::eprop;
  if (name == "uoro") return OnlineAlgorithm::uoro;
  if (name == "kf") return OnlineAlgorithm::kf;
  throw std::invalid_argument("algorithm: expected 'exact', 'snap1', 'eprop', 'uoro' or 'kf', got '" + name + "'");
}

// A stochastic learner's generator (seed, the learner's step count, the global index of its stream
// 0) from Python.
inline RandomStream make_random_stream(std::int64_t seed, std::int64_t step, double immediate_scale,
                                       std::int64_t first_stream) {
  RTRL_CHECK(seed >= 0, "seed: expected a non-negative integer, got " + std::to_string(seed));
  RTRL_CHECK(step >= 0, "random_step: expected a non-negative integer, got " + std::to_string(step));
  RTRL_CHECK(first_stream >= 0, "first_stream: expected a non-negative integer, got " + std::to_string(first_stream));
  return RandomStream{std::uint64_t(seed), step, immediate_scale, first_stream};
}

inline TraceRule trace_rule(OnlineAlgorithm a) {
  return a == OnlineAlgorithm::snap1 ? TraceRule::snap1 : TraceRule::eprop;
}

inline NonfinitePolicy parse_nonfinite_policy(const std::string& policy) {
  if (policy == "raise") return NonfinitePolicy::raise;
  if (policy == "skip") return NonfinitePolicy::skip;
  throw std::invalid_argument("on_nonfinite: expected 'raise' or 'skip', got '" + policy + "'");
}

// What an RTRL run returns to Python: the optimizer's update count and what the non-finite check saw.
inline py::dict run_report(std::int64_t updates, const NonfiniteEvents& e) {
  py::dict r;
  r["updates"] = updates;
  r["steps_done"] = e.steps_done;
  r["skipped_steps"] = e.skipped_steps;
  r["reset_streams"] = e.reset_streams;
  r["first_step"] = e.first_step;
  r["first_streams"] = e.first_streams;
  r["last_step"] = e.last_step;
  r["stopped"] = e.stopped;
  return r;
}

// An online learner's layout (algo/layout.hpp) for rtrl.memory: elements of each part, and the
// (rows, depth, cols) of each sensitivity product, whose scratch is the backend's.
inline constexpr const char* kLayoutDoc =
    "What an online learner holds and needs, in elements: state, sensitivities (the algorithm's state), "
    "workspace per call (besides the products' scratch) and the (rows, depth, cols) of each sensitivity "
    "product. algorithm: as the online calls take it ('exact', 'snap1', 'eprop', 'uoro', 'kf').";

inline py::dict layout_dict(const OnlineLayout& l, index_t n_params) {
  py::dict r;
  r["n_params"] = n_params;
  r["state"] = l.state;
  r["sensitivities"] = l.sensitivities;
  r["layer_sensitivities"] = l.layer_sensitivities;
  r["workspace"] = l.workspace;
  py::list products;
  for (const ProductShape& p : l.products) products.append(py::make_tuple(p.rows, p.depth, p.cols));
  r["products"] = products;
  return r;
}

// A Python callable hook(grad, finite, streams) -> (everywhere, streams) as the loop's
// GradientCombiner (nonfinite.hpp): grad a view of the step's gradient or None, streams a list of
// stream indices; its attribute each_step (default False) asks for the calls at epoch-mode steps.
// Called on the host thread, the GIL taken for the call only.
template <class T, class Reader>
GradientCombiner python_gradient_combiner(py::object hook) {
  if (hook.is_none()) return {};
  RTRL_CHECK(Reader::kHostMemory, "gradient_hook: the CUDA backend does not take a gradient hook (host "
                                  "memory only)");
  GradientCombiner c;
  c.each_step = py::bool_(py::getattr(hook, "each_step", py::bool_(false)));
  // the loop copies the combiner without the GIL: the copies share one reference, dropped with the GIL
  std::shared_ptr<py::object> held(new py::object(hook), [](py::object* o) {
    py::gil_scoped_acquire gil;
    delete o;
  });
  c.combine = [held](void* grad, index_t count, bool finite, std::vector<index_t>& streams) {
    py::gil_scoped_acquire gil;
    py::object view = grad ? py::object(py::array_t<T>({py::ssize_t(count)}, {py::ssize_t(sizeof(T))},
                                                       static_cast<T*>(grad), py::none()))
                           : py::object(py::none());
    const auto answer = py::cast<std::pair<bool, std::vector<index_t>>>((*held)(view, finite, streams));
    streams = answer.second;
    return answer.first;
  };
  return c;
}

// Runs an RTRL loop, run(events) -> update count, without the GIL; returns its run_report.
template <class Run>
py::dict run_rtrl(Run&& run) {
  NonfiniteEvents events;
  std::int64_t updates;
  {
    py::gil_scoped_release release;
    updates = run(events);
  }
  return run_report(updates, events);
}

template <class Backend, class Reader>
struct FullyRecurrentBindings {
  // Rejects +-inf anywhere and NaN unless nan_ok; names the step and stream of the first offender.
  template <class T>
  static void check_finite(const T* data, const std::vector<index_t>& shape, const char* name,
                           bool nan_ok, std::uintptr_t stream) {
    index_t count = 1;
    for (index_t s : shape) count *= s;
    const index_t bad = Backend::find_nonfinite(stream, data, count, nan_ok);
    if (bad < 0) return;
    const index_t per_step = shape[1] * shape[2];
    const index_t t = bad / per_step, s = (bad % per_step) / shape[2], k = bad % shape[2];
    throw std::invalid_argument(std::string(name) + ": non-finite value at step " +
                                std::to_string(t) + ", stream " + std::to_string(s) + ", index " +
                                std::to_string(k) +
                                (nan_ok ? " (NaN marks a missing target; +-inf is not allowed)"
                                        : " (values must be finite in the model's dtype)"));
  }

  // Checks X [T, B, m] (finite unless allow_nonfinite), targets [T, B, O] (NaN allowed; +-inf
  // only with allow_nonfinite) and, when given, the output buffers; returns the sequence with null
  // output pointers when outputs/loss are None.
  template <class T>
  static FullyRecurrentSequence<T> sequence(const FullyRecurrentConfig& c, const ArrayRef& X,
                                            py::handle targets, py::handle outputs, py::handle loss,
                                            std::uintptr_t stream, bool allow_nonfinite = false) {
    const FullyRecurrentDims& d = c.dims;
    const index_t B = d.batch;
    RTRL_CHECK(X.shape.size() == 3, "X: expected a 3-d array (time, streams, inputs) of shape (T, " +
                                        std::to_string(B) + ", " + std::to_string(d.inputs) +
                                        "), got shape " + shape_string(X.shape));
    const index_t Tn = X.shape[0];
    FullyRecurrentSequence<T> seq{};
    seq.steps = Tn;
    seq.x = checked<T>(X, "X", {Tn, B, d.inputs}, "(time, streams, inputs)", false);
    seq.target = nullptr;
    if (!targets.is_none())
      seq.target = checked<T>(Reader::read(targets, "targets"), "targets", {Tn, B, d.outputs},
                              "(time, streams, outputs)", false);
    seq.outputs = nullptr;
    seq.loss = nullptr;
    if (!outputs.is_none())
      seq.outputs = checked<T>(Reader::read(outputs, "outputs"), "outputs", {Tn, B, d.outputs},
                               "(time, streams, outputs)", true);
    if (!loss.is_none()) seq.loss = checked<T>(Reader::read(loss, "loss"), "loss", {Tn}, "(time,)", true);
    if (allow_nonfinite) return seq;
    check_finite(seq.x, X.shape, "X", false, stream);
    if (seq.target) check_finite(seq.target, {Tn, B, d.outputs}, "targets", true, stream);
    return seq;
  }

  template <class T>
  static py::dict rtrl(const FullyRecurrentConfig& c, const ArrayRef& weight, const ArrayRef& y,
                       const ArrayRef& P, const ArrayRef& grad, py::object opt_state,
                       const ArrayRef& X, py::object targets, py::object outputs, py::object loss,
                       const OptimizerConfig& opt, std::int64_t opt_step, bool update_each_step,
                       NonfinitePolicy policy, OnlineAlgorithm algorithm, py::object tangent,
                       const RandomStream& random, py::object gradient_hook, std::uintptr_t stream) {
    const FullyRecurrentDims& d = c.dims;
    const index_t n = d.units, L = d.width(), B = d.batch;
    FullyRecurrentSequence<T> seq =
        sequence<T>(c, X, targets, outputs, loss, stream, policy == NonfinitePolicy::skip);
    RTRL_CHECK(seq.outputs != nullptr && seq.loss != nullptr, "outputs, loss: buffers are required");
    FullyRecurrentState<T> st{};
    st.weight = checked<T>(weight, "weight", {n, L}, "(units, inputs + bias + units)", true);
    st.y = checked<T>(y, "state", {B, n}, "(streams, units)", true);
    if (algorithm == OnlineAlgorithm::exact)
      st.P = checked<T>(P, "sensitivities", {n, B, d.carried_rows(), L},
                        "(units, streams, carried weight rows, inputs + bias + units)", true);
    else if (algorithm == OnlineAlgorithm::kf)
      st.P = checked<T>(P, "kron_A", {n, B, n}, "(units, streams, weight rows)", true);
    else
      st.P = checked<T>(P, "traces", {B, n, L}, "(streams, units, inputs + bias + units)", true);
    T* tilde = nullptr;
    if (algorithm == OnlineAlgorithm::uoro)
      tilde = checked<T>(Reader::read(tangent, "tangent"), "tangent", {B, n}, "(streams, units)", true);
    if (algorithm == OnlineAlgorithm::kf)
      tilde = checked<T>(Reader::read(tangent, "kron_u"), "kron_u", {B, L}, "(streams, inputs + bias + units)", true);
    st.grad = checked<T>(grad, "grad", {n, L}, "(units, inputs + bias + units)", true);
    st.opt_state = nullptr;
    if (opt.state_rows() > 0)
      st.opt_state = checked<T>(Reader::read(opt_state, "optimizer_state"), "optimizer_state",
                                {index_t(opt.state_rows()), n, L}, "(state rows, units, width)", true);

    FullyRecurrentOptions o;
    o.activation = c.activation;
    o.teacher_forcing = c.teacher_forcing;
    o.loss_scale = c.loss_scale;
    o.update_each_step = update_each_step;
    o.optimizer = opt;
    o.optimizer_step = opt_step;
    o.on_nonfinite = policy;
    o.combine_gradient = python_gradient_combiner<T, Reader>(gradient_hook);
    return run_rtrl([&](NonfiniteEvents& events) {
      if (algorithm == OnlineAlgorithm::exact)
        return Backend::template fully_recurrent_rtrl<T>(stream, d, st, seq, o, events);
      if (algorithm == OnlineAlgorithm::uoro)
        return Backend::template fully_recurrent_uoro<T>(stream, d, st, tilde, seq, o, random, events);
      if (algorithm == OnlineAlgorithm::kf)
        return Backend::template fully_recurrent_kf<T>(stream, d, st, tilde, seq, o, random, events);
      return Backend::template fully_recurrent_traces<T>(stream, d, st, seq, o, trace_rule(algorithm),
                                                         events);
    });
  }

  template <class T>
  static py::dict bptt(const FullyRecurrentConfig& c, const ArrayRef& weight, const ArrayRef& y,
                   const ArrayRef& grad, const ArrayRef& X, py::object targets,
                   py::object outputs, py::object loss, NonfinitePolicy policy, std::uintptr_t stream) {
    const bool allow_nonfinite = policy == NonfinitePolicy::skip;
    const FullyRecurrentDims& d = c.dims;
    const index_t n = d.units, L = d.width(), B = d.batch;
    RTRL_CHECK(d.shard_rows < 0, "config: BPTT keeps no sensitivities to shard (shard_rows must be -1)");
    FullyRecurrentSequence<T> seq = sequence<T>(c, X, targets, outputs, loss, stream, allow_nonfinite);
    RTRL_CHECK(seq.outputs != nullptr && seq.loss != nullptr, "outputs, loss: buffers are required");
    FullyRecurrentBpttState<T> st{};
    st.weight = checked<T>(weight, "weight", {n, L}, "(units, inputs + bias + units)", false);
    st.y = checked<T>(y, "state", {B, n}, "(streams, units)", true);
    st.grad = checked<T>(grad, "grad", {n, L}, "(units, inputs + bias + units)", true);
    return run_rtrl([&](NonfiniteEvents& events) {
      Backend::template fully_recurrent_bptt<T>(stream, d, st, seq, c.activation, c.teacher_forcing,
                                                c.loss_scale, policy, events);
      return std::int64_t(0);
    });
  }

  template <class T>
  static bool optimizer_step(const OptimizerConfig& opt, std::int64_t step, const ArrayRef& param,
                             const ArrayRef& grad, py::object state, std::uintptr_t stream) {
    index_t count = 1;
    for (index_t s : param.shape) count *= s;
    T* p = checked<T>(param, "param", param.shape, "", true);
    T* g = checked<T>(grad, "grad", param.shape, "(same as param)", true);
    T* st = nullptr;
    if (opt.state_rows() > 0) {
      std::vector<index_t> shape{index_t(opt.state_rows())};
      shape.insert(shape.end(), param.shape.begin(), param.shape.end());
      st = checked<T>(Reader::read(state, "optimizer_state"), "optimizer_state", shape,
                      "(state rows, *param.shape)", true);
    }
    RTRL_CHECK(step >= 1, "step: expected a positive update count");
    py::gil_scoped_release release;
    return Backend::template optimizer_step<T>(stream, opt, step, count, p, g, st);
  }

  // Dispatches on the dtype of `reference` (float32 or float64).
  template <class F>
  static auto by_dtype(const ArrayRef& reference, const char* name, F&& f) {
    if (reference.kind == 'f' && reference.itemsize == 4) return f(float{});
    if (reference.kind == 'f' && reference.itemsize == 8) return f(double{});
    throw py::type_error(std::string(name) + ": expected dtype float32 or float64");
  }

  static void bind(py::module_& m) {
    py::class_<FullyRecurrentConfig>(m, "FullyRecurrentConfig", py::module_local())
        .def(py::init(&make_fully_recurrent_config), py::arg("units"), py::arg("inputs"),
             py::arg("bias"), py::arg("outputs"), py::arg("batch"), py::arg("activation"),
             py::arg("teacher_forcing"), py::arg("reduction"), py::arg("shard_row0") = 0,
             py::arg("shard_rows") = -1)
        .def_property_readonly("n_weights", [](const FullyRecurrentConfig& c) { return c.dims.n_weights(); })
        .def_property_readonly("width", [](const FullyRecurrentConfig& c) { return c.dims.width(); })
        .def("shard_parameters", [](const FullyRecurrentConfig& c, index_t row0, index_t rows) {
          const index_t n = c.dims.units, L = c.dims.width();
          RTRL_CHECK(rows >= 1 && row0 >= 0 && row0 + rows <= n, "shard: weight rows outside [0, " + std::to_string(n) + ")");
          return std::vector<std::pair<index_t, index_t>>{{row0 * L, rows * L}};
        }, py::arg("row0"), py::arg("rows"),
           "(start, count) ranges of the flat weights whose gradient a shard carrying weight rows "
           "[row0, row0 + rows) computes")
        .def_property_readonly("carried_rows", [](const FullyRecurrentConfig& c) { return c.dims.carried_rows(); },
                               "weight rows whose sensitivities this process carries (all, unsharded)")
        .def("layout", [](const FullyRecurrentConfig& c, const std::string& algorithm, bool update_each_step,
                          index_t optimizer_rows) {
          return layout_dict(Backend::fully_recurrent_layout(parse_online_algorithm(algorithm), c.dims,
                                                             update_each_step, optimizer_rows),
                             c.dims.n_weights());
        }, py::arg("algorithm"), py::arg("update_each_step"), py::arg("optimizer_rows"), kLayoutDoc);
    py::class_<OptimizerConfig>(m, "OptimizerConfig", py::module_local())
        .def(py::init(&make_optimizer_config), py::arg("kind"), py::arg("lr"),
             py::arg("momentum") = 0.0, py::arg("beta1") = 0.9, py::arg("beta2") = 0.999,
             py::arg("eps") = 1e-8, py::arg("max_grad_norm") = 0.0)
        .def_property_readonly("state_rows", &OptimizerConfig::state_rows);

    m.def("fully_recurrent_rtrl",
          [](const FullyRecurrentConfig& c, py::object weight, py::object y, py::object P,
             py::object grad, py::object opt_state, py::object X, py::object targets,
             py::object outputs, py::object loss, const OptimizerConfig& opt, std::int64_t step,
             bool update_each_step, const std::string& on_nonfinite, std::uintptr_t stream,
             const std::string& algorithm, py::object tangent, std::int64_t seed,
             std::int64_t random_step, double immediate_scale, py::object gradient_hook,
             std::int64_t first_stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const NonfinitePolicy policy = parse_nonfinite_policy(on_nonfinite);
            const OnlineAlgorithm algo = parse_online_algorithm(algorithm);
            const RandomStream random = make_random_stream(seed, random_step, immediate_scale, first_stream);
            const ArrayRef w = Reader::read(weight, "weight");
            const ArrayRef x = Reader::read(X, "X");
            return by_dtype(w, "weight", [&](auto tag) {
              using T = decltype(tag);
              return rtrl<T>(c, w, Reader::read(y, "state"), Reader::read(P, "sensitivities"),
                             Reader::read(grad, "grad"), opt_state, x, targets, outputs, loss, opt,
                             step, update_each_step, policy, algo, tangent, random, gradient_hook, stream);
            });
          },
          py::arg("config"), py::arg("weight"), py::arg("state"), py::arg("sensitivities"),
          py::arg("grad"), py::arg("optimizer_state"), py::arg("X"), py::arg("targets"),
          py::arg("outputs"), py::arg("loss"), py::arg("optimizer"), py::arg("optimizer_step"),
          py::arg("update_each_step"), py::arg("on_nonfinite") = "raise", py::arg("stream") = 0,
          py::arg("algorithm") = "exact", py::arg("tangent") = py::none(), py::arg("seed") = 0,
          py::arg("random_step") = 0, py::arg("immediate_scale") = 1.0,
          py::arg("gradient_hook") = py::none(), py::arg("first_stream") = 0,
          "Runs exact RTRL over X (algorithm 'exact'; sensitivities (units, streams, units, width)), "
          "or SnAp-1 ('snap1') or e-prop ('eprop') with their traces (streams, units, width) in "
          "sensitivities' place, or UORO ('uoro': theta~ (streams, units, width) there and the state "
          "tangent (streams, units), its signs keyed by seed at the learner's step count "
          "random_step; immediate_scale below 1 gives the deliberately biased estimate the "
          "unbiasedness tests check against), or KF-RTRL ('kf': A (units, streams, units) there and "
          "u (streams, width) as tangent; first_stream: the global index of stream 0 in the signs' key); "
          "gradient_hook(grad, finite, streams) -> (everywhere, streams), when given, links the loop to "
          "other processes (GradientCombiner, nonfinite.hpp); returns a dict: the optimizer's update count "
          "after the call ('updates') and what the non-finite check saw.");

    m.def("fully_recurrent_bptt",
          [](const FullyRecurrentConfig& c, py::object weight, py::object y, py::object grad,
             py::object X, py::object targets, py::object outputs, py::object loss,
             const std::string& on_nonfinite, std::uintptr_t stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const NonfinitePolicy policy = parse_nonfinite_policy(on_nonfinite);
            const ArrayRef w = Reader::read(weight, "weight");
            return by_dtype(w, "weight", [&](auto tag) {
              using T = decltype(tag);
              return bptt<T>(c, w, Reader::read(y, "state"), Reader::read(grad, "grad"),
                             Reader::read(X, "X"), targets, outputs, loss, policy, stream);
            });
          },
          py::arg("config"), py::arg("weight"), py::arg("state"), py::arg("grad"), py::arg("X"),
          py::arg("targets"), py::arg("outputs"), py::arg("loss"),
          py::arg("on_nonfinite") = "raise", py::arg("stream") = 0,
          "Runs BPTT over X (weights fixed) and adds the sequence's gradient to grad, unless it or "
          "the new state is non-finite (then the streams that hold a non-finite value are reset); "
          "returns what the non-finite check saw, as fully_recurrent_rtrl. X and targets are "
          "checked to be finite unless on_nonfinite='skip'.");

    m.def("validate_sequence",
          [](const FullyRecurrentConfig& c, py::object X, py::object targets, std::uintptr_t stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const ArrayRef x = Reader::read(X, "X");
            by_dtype(x, "X", [&](auto tag) {
              sequence<decltype(tag)>(c, x, targets, py::none(), py::none(), stream);
            });
          },
          py::arg("config"), py::arg("X"), py::arg("targets"), py::arg("stream") = 0,
          "Checks X and targets as fully_recurrent_rtrl/bptt would, without running anything.");

    m.def("optimizer_step",
          [](const OptimizerConfig& opt, std::int64_t step, py::object param, py::object grad,
             py::object state, std::uintptr_t stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const ArrayRef p = Reader::read(param, "param");
            return by_dtype(p, "param", [&](auto tag) {
              using T = decltype(tag);
              return optimizer_step<T>(opt, step, p, Reader::read(grad, "grad"), state, stream);
            });
          },
          py::arg("optimizer"), py::arg("step"), py::arg("param"), py::arg("grad"),
          py::arg("state"), py::arg("stream") = 0,
          "Applies one optimizer update (step is 1-based) to param in place; returns False, "
          "leaving param and state unchanged, when it would make a parameter non-finite.");
  }
};

}  // namespace rtrl
