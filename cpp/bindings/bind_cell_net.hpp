// Python bindings of RecurrentNet's native algorithms (exact RTRL, BPTT, the readout), one
// body for both backend modules.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "array_ref.hpp"
#include "bind_fully_recurrent.hpp"
#include "bind_layers.hpp"
#include "rtrl/backend.hpp"

namespace rtrl {

// RecurrentNet's cells: the layers' (rnn, lstm, gru) and the eLSTM.
inline CellKind parse_net_cell(const std::string& cell) {
  if (cell == "elstm") return CellKind::elstm;
  if (cell == "rnn" || cell == "lstm" || cell == "gru") return parse_cell(cell);
  throw std::invalid_argument("cell: expected 'rnn', 'lstm', 'gru' or 'elstm', got '" + cell + "'");
}

struct CellNetConfig {
  CellNetDims dims;
  LossKind loss = LossKind::mse;
  double loss_scale = 1.0;
};

inline CellNetConfig make_cell_net_config(const std::string& cell, const std::string& nonlinearity,
                                          index_t inputs, index_t hidden, index_t outputs,
                                          index_t batch, const std::string& loss,
                                          const std::string& reduction, index_t layers,
                                          double alpha, index_t shard_row0, index_t shard_rows) {
  RTRL_CHECK(inputs >= 1, "input_size: expected a positive integer, got " + std::to_string(inputs));
  RTRL_CHECK(hidden >= 1, "hidden_size: expected a positive integer, got " + std::to_string(hidden));
  RTRL_CHECK(outputs >= 1, "output_size: expected a positive integer, got " + std::to_string(outputs));
  RTRL_CHECK(batch >= 1, "batch_size: expected a positive integer, got " + std::to_string(batch));
  RTRL_CHECK(layers >= 1, "num_layers: expected a positive integer, got " + std::to_string(layers));
  RTRL_CHECK(alpha > 0.0 && alpha <= 1.0,
             "alpha: expected a number in (0, 1], got " + std::to_string(alpha));
  CellNetConfig c;
  c.dims = CellNetDims{parse_net_cell(cell), parse_nonlinearity(nonlinearity), inputs, hidden, outputs,
                       batch, layers, alpha};
  RTRL_CHECK(alpha == 1.0 || c.dims.cell == CellKind::rnn,
             "alpha: the leaky cell is an rnn; cell '" + cell + "' takes alpha=1 only");
  const index_t gate_rows = c.dims.gates() * hidden;
  RTRL_CHECK(shard_rows == -1 ? shard_row0 == 0
                              : shard_rows >= 1 && shard_row0 >= 0 && shard_row0 + shard_rows <= gate_rows,
             "shard: expected gate rows [row0, row0 + rows) within [0, gates * hidden_size=" +
                 std::to_string(gate_rows) + "), got row0=" + std::to_string(shard_row0) +
                 ", rows=" + std::to_string(shard_rows));
  c.dims.shard_row0 = shard_row0;
  c.dims.shard_rows = shard_rows;
  if (loss == "mse") c.loss = LossKind::mse;
  else if (loss == "cross_entropy") c.loss = LossKind::cross_entropy;
  else throw std::invalid_argument("loss: expected 'mse' or 'cross_entropy', got '" + loss + "'");
  if (reduction == "mean") c.loss_scale = 1.0 / double(batch);
  else if (reduction == "sum") c.loss_scale = 1.0;
  else throw std::invalid_argument("reduction: expected 'mean' or 'sum', got '" + reduction + "'");
  // Sizes in double first: the index arithmetic must not overflow for any accepted config.
  const double G = double(c.dims.gates()), H = double(hidden), nb = double(c.dims.bias_cols());
  const double R = c.dims.cell == CellKind::elstm ? 1.0 : H;  // w_hh's columns per row
  const double theta = G * H * (double(inputs) + R + nb) + double(layers - 1) * G * H * (H + R + nb);
  const double width = double(batch) * theta;
  RTRL_CHECK(width < 2147483647.0,
             "batch_size * gates * hidden_size * (input_size + hidden_size + biases) summed over the "
             "layers = " + std::to_string(width) + " exceeds the 32-bit index range of the BLAS");
  return c;
}

template <class Backend, class Reader>
struct CellNetBindings {
  using FR = FullyRecurrentBindings<Backend, Reader>;

  template <class T>
  static T* targets(const CellNetConfig& c, py::handle obj, index_t Tn, std::uintptr_t stream,
                    bool allow_nonfinite = false) {
    if (obj.is_none()) return nullptr;
    const index_t B = c.dims.batch, O = c.dims.outputs;
    if (c.loss == LossKind::mse) {
      T* t = checked<T>(Reader::read(obj, "targets"), "targets", {Tn, B, O}, "(time, streams, outputs)", false);
      if (!allow_nonfinite) FR::check_finite(t, {Tn, B, O}, "targets", true, stream);
      return t;
    }
    T* t = checked<T>(Reader::read(obj, "targets"), "targets", {Tn, B}, "(time, streams) class indices", false);
    FR::check_finite(t, {Tn, B, 1}, "targets", false, stream);
    // the readout reads y[class]: every index is checked here, on the backend, before any kernel
    const index_t bad = Backend::find_bad_class(stream, t, Tn * B, O);
    if (bad >= 0)
      throw std::invalid_argument("targets: the class index at step " + std::to_string(bad / B) +
                                  ", stream " + std::to_string(bad % B) + " is not -1 (no target) or an "
                                  "integer class in [0, " + std::to_string(O) + ")");
    return t;
  }

  // The recurrent state: [B, H] with one layer, [L, B, H] with more.
  template <class T>
  static T* state(const CellNetDims& d, py::object obj, const char* name) {
    const index_t B = d.batch, H = d.hidden;
    if (d.layers == 1) return checked<T>(Reader::read(obj, name), name, {B, H}, "(streams, hidden)", true);
    return checked<T>(Reader::read(obj, name), name, {d.layers, B, H}, "(layers, streams, hidden)", true);
  }

  // One array per layer: [H, B, C_0] with one layer, [H, B C_<=l] for layer l of more (cell_rtrl.hpp;
  // C = N unless the learner is a shard of column-sharded RTRL).
  template <class T>
  static std::vector<T*> sensitivities(const CellNetDims& d, py::object obj, const char* name) {
    const index_t B = d.batch, H = d.hidden;
    RTRL_CHECK(py::isinstance<py::sequence>(obj) && py::len(obj) == size_t(d.layers),
               std::string(name) + ": expected a sequence of " + std::to_string(d.layers) +
                   " arrays, one per layer");
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    std::vector<T*> out;
    for (index_t l = 0; l < d.layers; ++l) {
      const std::string what = std::string(name) + "[" + std::to_string(l) + "]";
      const std::vector<index_t> shape =
          d.layers == 1 ? std::vector<index_t>{H, B, d.n_carried()}
                        : std::vector<index_t>{H, B * d.carried_through(l)};
      out.push_back(checked<T>(Reader::read(seq[size_t(l)], what.c_str()), what.c_str(), shape, "", true));
    }
    return out;
  }

  // The unit-diagonal traces: one array per layer, [B, N_l] (diagonal_traces.hpp).
  template <class T>
  static std::vector<T*> traces(const CellNetDims& d, py::object obj, const char* name) {
    RTRL_CHECK(py::isinstance<py::sequence>(obj) && py::len(obj) == size_t(d.layers),
               std::string(name) + ": expected a sequence of " + std::to_string(d.layers) +
                   " arrays, one per layer");
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    std::vector<T*> out;
    for (index_t l = 0; l < d.layers; ++l) {
      const std::string what = std::string(name) + "[" + std::to_string(l) + "]";
      out.push_back(checked<T>(Reader::read(seq[size_t(l)], what.c_str()), what.c_str(),
                               {d.batch, d.layer(l).n_theta()}, "(streams, layer parameters)", true));
    }
    return out;
  }

  // KF-RTRL's factors, one array per layer: A [H, B G H] or u [B, W_l] (kf_rtrl.hpp).
  template <class T>
  static std::vector<T*> kron_factors(const CellNetDims& d, py::object obj, const char* name, bool u) {
    RTRL_CHECK(py::isinstance<py::sequence>(obj) && py::len(obj) == size_t(d.layers),
               std::string(name) + ": expected a sequence of " + std::to_string(d.layers) +
                   " arrays, one per layer");
    py::sequence seq = py::reinterpret_borrow<py::sequence>(obj);
    std::vector<T*> out;
    const index_t B = d.batch, H = d.hidden, GH = d.gates() * H;
    for (index_t l = 0; l < d.layers; ++l) {
      const std::string what = std::string(name) + "[" + std::to_string(l) + "]";
      const std::vector<index_t> shape = u ? std::vector<index_t>{B, d.layer(l).width()}
                                           : std::vector<index_t>{H, B * GH};
      out.push_back(checked<T>(Reader::read(seq[size_t(l)], what.c_str()), what.c_str(), shape, "", true));
    }
    return out;
  }

  template <class T>
  static py::dict rtrl(const CellNetConfig& c, py::object params, py::object h, py::object cc,
                       py::object P_h, py::object P_c, py::object grad, py::object opt_state,
                       py::object X, py::object target_obj, py::object outputs, py::object loss,
                       const OptimizerConfig& opt, std::int64_t opt_step, bool update_each_step,
                       NonfinitePolicy policy, OnlineAlgorithm algorithm, py::object feedback_obj,
                       py::object tangent_obj, const RandomStream& random, py::object gradient_hook,
                       std::uintptr_t stream) {
    const bool allow_nonfinite = policy == NonfinitePolicy::skip;
    const CellNetDims& d = c.dims;
    const index_t B = d.batch, NP = d.n_params();
    const bool lstm = d.cell == CellKind::lstm;
    const CellNetSequence<T> seq = sequence<T>(c, X, target_obj, outputs, loss, allow_nonfinite, stream);
    CellNetState<T> st{};
    st.params = checked<T>(Reader::read(params, "params"), "params", {NP}, "(n_params,)", true);
    st.h = state<T>(d, h, "state_h");
    st.c = lstm ? state<T>(d, cc, "state_c") : nullptr;
    const bool exact = algorithm == OnlineAlgorithm::exact;
    const bool kf = algorithm == OnlineAlgorithm::kf;
    RTRL_CHECK(exact || d.shard_rows < 0, "config: only exact RTRL shards its sensitivities (shard_rows must be -1)");
    std::vector<T*> p_h = exact ? sensitivities<T>(d, P_h, "sensitivities_h")
                          : kf  ? kron_factors<T>(d, P_h, "kron_A_h", false)
                                : traces<T>(d, P_h, "traces_h");
    std::vector<T*> p_c;
    if (lstm && algorithm != OnlineAlgorithm::uoro)
      p_c = exact ? sensitivities<T>(d, P_c, "sensitivities_c")
            : kf  ? kron_factors<T>(d, P_c, "kron_A_c", false)
                  : traces<T>(d, P_c, "traces_c");
    std::vector<T*> kron_u = kf ? kron_factors<T>(d, tangent_obj, "kron_u", true) : std::vector<T*>();
    if (algorithm == OnlineAlgorithm::kf)
      RTRL_CHECK(d.cell == CellKind::rnn || d.cell == CellKind::lstm,
                 "model: KF-RTRL runs on FullyRecurrent and on RecurrentNet('rnn' | 'lstm', ...); the "
                 "gru's and the elstm's immediate terms are not a Kronecker product");
    T* tangent = nullptr;
    if (algorithm == OnlineAlgorithm::uoro)
      tangent = checked<T>(Reader::read(tangent_obj, "tangent"), "tangent",
                           {d.layers, lstm ? 2 : 1, B, d.hidden}, "(layers, state parts, streams, hidden)", true);
    const T* feedback = nullptr;
    if (!feedback_obj.is_none()) {
      RTRL_CHECK(!exact, "feedback: only e-prop takes a feedback matrix");
      feedback = checked<T>(Reader::read(feedback_obj, "feedback"), "feedback", {d.outputs, d.hidden},
                            "(outputs, hidden)", false);
    }
    st.P_h = p_h.data();
    st.P_c = lstm && !p_c.empty() ? p_c.data() : nullptr;
    st.grad = checked<T>(Reader::read(grad, "grad"), "grad", {NP}, "(n_params,)", true);
    st.opt_state = nullptr;
    if (opt.state_rows() > 0)
      st.opt_state = checked<T>(Reader::read(opt_state, "optimizer_state"), "optimizer_state",
                                {index_t(opt.state_rows()), NP}, "", true);
    CellNetOptions o;
    o.loss = c.loss;
    o.loss_scale = c.loss_scale;
    o.update_each_step = update_each_step;
    o.optimizer = opt;
    o.optimizer_step = opt_step;
    o.on_nonfinite = policy;
    o.combine_gradient = python_gradient_combiner<T, Reader>(gradient_hook);
    return run_rtrl([&](NonfiniteEvents& events) {
      if (exact) return Backend::template cell_net_rtrl<T>(stream, d, st, seq, o, events);
      if (algorithm == OnlineAlgorithm::uoro)
        return Backend::template cell_net_uoro<T>(stream, d, st, tangent, seq, o, random, events);
      if (kf) return Backend::template cell_net_kf<T>(stream, d, st, kron_u.data(), seq, o, random, events);
      return Backend::template cell_net_traces<T>(stream, d, st, seq, o, trace_rule(algorithm),
                                                  feedback, events);
    });
  }

  template <class T>
  static CellNetSequence<T> sequence(const CellNetConfig& c, py::object X, py::object target_obj,
                                     py::object outputs, py::object loss, bool allow_nonfinite,
                                     std::uintptr_t stream) {
    const CellNetDims& d = c.dims;
    const index_t B = d.batch;
    const ArrayRef x = Reader::read(X, "X");
    RTRL_CHECK(x.shape.size() == 3, "X: expected a 3-d array (time, streams, inputs) of shape (T, " +
                                        std::to_string(B) + ", " + std::to_string(d.inputs) +
                                        "), got shape " + shape_string(x.shape));
    const index_t Tn = x.shape[0];
    CellNetSequence<T> seq{};
    seq.steps = Tn;
    seq.x = checked<T>(x, "X", {Tn, B, d.inputs}, "(time, streams, inputs)", false);
    seq.target = targets<T>(c, target_obj, Tn, stream, allow_nonfinite);
    seq.outputs = checked<T>(Reader::read(outputs, "outputs"), "outputs", {Tn, B, d.outputs}, "", true);
    seq.loss = checked<T>(Reader::read(loss, "loss"), "loss", {Tn}, "", true);
    if (!allow_nonfinite) FR::check_finite(seq.x, x.shape, "X", false, stream);
    return seq;
  }

  template <class T>
  static py::dict bptt(const CellNetConfig& c, py::object params, py::object h, py::object cc,
                       py::object grad, py::object X, py::object target_obj, py::object outputs,
                       py::object loss, NonfinitePolicy policy, std::uintptr_t stream) {
    const CellNetDims& d = c.dims;
    const index_t NP = d.n_params();
    RTRL_CHECK(d.shard_rows < 0, "config: BPTT keeps no sensitivities to shard (shard_rows must be -1)");
    const CellNetSequence<T> seq =
        sequence<T>(c, X, target_obj, outputs, loss, policy == NonfinitePolicy::skip, stream);
    CellNetBpttState<T> st{};
    st.params = checked<T>(Reader::read(params, "params"), "params", {NP}, "(n_params,)", false);
    st.h = state<T>(d, h, "state_h");
    st.c = d.cell == CellKind::lstm ? state<T>(d, cc, "state_c") : nullptr;
    st.grad = checked<T>(Reader::read(grad, "grad"), "grad", {NP}, "(n_params,)", true);
    return run_rtrl([&](NonfiniteEvents& events) {
      Backend::template cell_net_bptt<T>(stream, d, st, seq, c.loss, c.loss_scale, policy, events);
      return std::int64_t(0);
    });
  }

  template <class T>
  static void readout(const CellNetConfig& c, py::object h, py::object params, py::object target_obj,
                      py::object outputs, py::object step_loss, py::object delta_h, py::object grad,
                      bool accumulate, bool allow_nonfinite, std::uintptr_t stream) {
    const CellNetDims& d = c.dims;
    const index_t B = d.batch, H = d.hidden, O = d.outputs, NP = d.n_params();
    const ArrayRef hr = Reader::read(h, "h");
    RTRL_CHECK(hr.shape.size() == 3 && hr.shape[1] == B && hr.shape[2] == H,
               "h: expected shape (T, " + std::to_string(B) + ", " + std::to_string(H) + "), got " +
                   shape_string(hr.shape));
    const index_t Tn = hr.shape[0];
    ReadoutArgs<T> a{};
    a.rows = Tn * B;
    a.hidden = H;
    a.outputs = O;
    a.per_step = B;
    a.loss = c.loss;
    a.scale = T(c.loss_scale);
    a.h = checked<T>(hr, "h", hr.shape, "", false);
    a.ldh = H;
    const T* p = checked<T>(Reader::read(params, "params"), "params", {NP}, "(n_params,)", false);
    a.w_out = p + d.off_w_out();
    a.b_out = p + d.off_b_out();
    a.target = targets<T>(c, target_obj, Tn, stream, allow_nonfinite);
    a.y = checked<T>(Reader::read(outputs, "outputs"), "outputs", {Tn, B, O}, "", true);
    a.step_loss = checked<T>(Reader::read(step_loss, "loss"), "loss", {Tn}, "", true);
    a.delta_h = delta_h.is_none() ? nullptr
                                  : checked<T>(Reader::read(delta_h, "delta_h"), "delta_h", {Tn, B, H}, "", true);
    T* g = checked<T>(Reader::read(grad, "grad"), "grad", {NP}, "(n_params,)", true);
    a.grad_w_out = g + d.off_w_out();
    a.grad_b_out = g + d.off_b_out();
    a.accumulate = accumulate;
    if (a.rows == 0) return;
    py::gil_scoped_release release;
    Backend::template readout<T>(stream, a);
  }

  // What Python knows of a cell, from its file (cells/*.hpp): gates, state parts, bias columns.
  template <class Cell>
  static py::dict describe() {
    py::dict d;
    d["gates"] = Cell::kGates;
    d["state_parts"] = Cell::kHasCellState ? 2 : 1;
    d["bias_columns"] = Cell::kBiasColumns;
    d["coefficients"] = Cell::kCoefficients;
    d["elementwise"] = Cell::kElementwiseRecurrence;
    return d;
  }

  static void bind(py::module_& m) {
    m.def("cell_info", []() {
      py::dict d;
      d["rnn"] = describe<RnnCell>();
      d["lstm"] = describe<LstmCell>();
      d["gru"] = describe<GruCell>();
      d["elstm"] = describe<ElstmCell>();
      return d;
    }, "Each cell's gate count, state parts (h, or h and c), bias columns of its sensitivities "
       "and RTRL coefficients.");
    py::class_<CellNetConfig>(m, "CellNetConfig", py::module_local())
        .def(py::init(&make_cell_net_config), py::arg("cell"), py::arg("nonlinearity"),
             py::arg("inputs"), py::arg("hidden"), py::arg("outputs"), py::arg("batch"),
             py::arg("loss"), py::arg("reduction"), py::arg("layers") = 1, py::arg("alpha") = 1.0,
             py::arg("shard_row0") = 0, py::arg("shard_rows") = -1)
        .def_property_readonly("n_theta", [](const CellNetConfig& c) { return c.dims.n_theta(); })
        .def_property_readonly("layers", [](const CellNetConfig& c) { return c.dims.layers; })
        .def_property_readonly("theta_through", [](const CellNetConfig& c) {
          std::vector<index_t> n;
          for (index_t l = 0; l < c.dims.layers; ++l) n.push_back(c.dims.theta_through(l));
          return n;
        }, "N_<=l for each layer l: the parameter columns of layer l's sensitivities")
        .def_property_readonly("theta_at", [](const CellNetConfig& c) {
          std::vector<index_t> n;
          for (index_t l = 0; l < c.dims.layers; ++l) n.push_back(c.dims.layer(l).theta_at);
          return n;
        }, "N_<l for each layer l: where layer l's parameter columns start")
        .def("shard_parameters", [](const CellNetConfig& c, index_t row0, index_t rows) {
          const index_t GH = c.dims.gates() * c.dims.hidden;
          RTRL_CHECK(rows >= 1 && row0 >= 0 && row0 + rows <= GH, "shard: gate rows outside [0, " + std::to_string(GH) + ")");
          std::vector<std::pair<index_t, index_t>> out;
          for (index_t l = 0; l < c.dims.layers; ++l)
            for (const ThetaBlock& b : theta_blocks(c.dims.layer(l))) out.push_back({b.at + row0 * b.cols, rows * b.cols});
          return out;
        }, py::arg("row0"), py::arg("rows"),
           "(start, count) ranges of the flat parameters whose gradient a shard carrying gate rows "
           "[row0, row0 + rows) of every layer computes")
        .def_property_readonly("carried_rows", [](const CellNetConfig& c) { return c.dims.layer(0).carried_rows(); },
                               "gate rows of every layer whose sensitivities this process carries (all, unsharded)")
        .def_property_readonly("carried_through", [](const CellNetConfig& c) {
          std::vector<index_t> n;
          for (index_t l = 0; l < c.dims.layers; ++l) n.push_back(c.dims.carried_through(l));
          return n;
        }, "C_<=l for each layer l: the columns per stream of layer l's sensitivities (N_<=l unsharded)")
        .def_property_readonly("carried_at", [](const CellNetConfig& c) {
          std::vector<index_t> n;
          for (index_t l = 0; l < c.dims.layers; ++l) n.push_back(c.dims.layer(l).carried_at);
          return n;
        }, "C_<l for each layer l: where layer l's carried columns start (N_<l unsharded)")
        .def_property_readonly("n_params", [](const CellNetConfig& c) { return c.dims.n_params(); })
        .def("layout", [](const CellNetConfig& c, const std::string& algorithm, bool update_each_step,
                          index_t optimizer_rows) {
          const OnlineAlgorithm a = parse_online_algorithm(algorithm);
          RTRL_CHECK(a != OnlineAlgorithm::kf || c.dims.cell == CellKind::rnn || c.dims.cell == CellKind::lstm,
                     "model: KF-RTRL runs on 'fully_recurrent', 'rnn' and 'lstm'");
          RTRL_CHECK(a == OnlineAlgorithm::exact || c.dims.shard_rows < 0,
                     "config: only exact RTRL shards its sensitivities (shard_rows must be -1)");
          return layout_dict(Backend::cell_net_layout(a, c.dims, update_each_step, optimizer_rows),
                             c.dims.n_params());
        }, py::arg("algorithm"), py::arg("update_each_step"), py::arg("optimizer_rows"), kLayoutDoc)
        .def_property_readonly("layer_theta", [](const CellNetConfig& c) {
          std::vector<index_t> n;
          for (index_t l = 0; l < c.dims.layers; ++l) n.push_back(c.dims.layer(l).n_theta());
          return n;
        }, "N_l for each layer l: its own parameter columns (a trace's width per stream)")
        .def_property_readonly("width", [](const CellNetConfig& c) { return c.dims.width(); })
        .def_property_readonly("offsets", [](const CellNetConfig& c) {
          const CellNetDims& d = c.dims;
          return py::make_tuple(0, d.off_w_hh(), d.off_b_ih(), d.off_b_hh(), d.off_w_out(),
                                d.off_b_out(), d.n_params());
        });
    m.def("cell_net_rtrl",
          [](const CellNetConfig& c, py::object params, py::object h, py::object cc, py::object P_h,
             py::object P_c, py::object grad, py::object opt_state, py::object X, py::object targets,
             py::object outputs, py::object loss, const OptimizerConfig& opt, std::int64_t step,
             bool update_each_step, const std::string& on_nonfinite, std::uintptr_t stream,
             const std::string& algorithm, py::object feedback, py::object tangent, std::int64_t seed,
             std::int64_t random_step, double immediate_scale, py::object gradient_hook,
             std::int64_t first_stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const NonfinitePolicy policy = parse_nonfinite_policy(on_nonfinite);
            const OnlineAlgorithm algo = parse_online_algorithm(algorithm);
            const RandomStream random = make_random_stream(seed, random_step, immediate_scale, first_stream);
            const ArrayRef p = Reader::read(params, "params");
            return FR::by_dtype(p, "params", [&](auto tag) {
              return rtrl<decltype(tag)>(c, params, h, cc, P_h, P_c, grad, opt_state, X, targets,
                                         outputs, loss, opt, step, update_each_step, policy, algo,
                                         feedback, tangent, random, gradient_hook, stream);
            });
          },
          py::arg("config"), py::arg("params"), py::arg("state_h"), py::arg("state_c"),
          py::arg("sensitivities_h"), py::arg("sensitivities_c"), py::arg("grad"),
          py::arg("optimizer_state"), py::arg("X"), py::arg("targets"), py::arg("outputs"),
          py::arg("loss"), py::arg("optimizer"), py::arg("optimizer_step"),
          py::arg("update_each_step"), py::arg("on_nonfinite") = "raise", py::arg("stream") = 0,
          py::arg("algorithm") = "exact", py::arg("feedback") = py::none(),
          py::arg("tangent") = py::none(), py::arg("seed") = 0, py::arg("random_step") = 0,
          py::arg("immediate_scale") = 1.0, py::arg("gradient_hook") = py::none(),
          py::arg("first_stream") = 0,
          "Runs exact RTRL for RecurrentNet over X (algorithm 'exact'), or SnAp-1 ('snap1') or "
          "e-prop ('eprop') with one trace array per layer (streams, N_l) in the sensitivities' "
          "place and, for e-prop, an optional feedback matrix (outputs, hidden) in weight_out's "
          "place; or UORO ('uoro': theta~ (streams, N_l) per layer there, the state tangent "
          "(layers, parts, streams, hidden), signs keyed by seed at the learner's step count "
          "random_step; gradient_hook as fully_recurrent_rtrl's); returns a dict: the optimizer's update count ('updates') and what the "
          "non-finite check saw.");
    m.def("cell_net_bptt",
          [](const CellNetConfig& c, py::object params, py::object h, py::object cc, py::object grad,
             py::object X, py::object targets, py::object outputs, py::object loss,
             const std::string& on_nonfinite, std::uintptr_t stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const NonfinitePolicy policy = parse_nonfinite_policy(on_nonfinite);
            const ArrayRef p = Reader::read(params, "params");
            return FR::by_dtype(p, "params", [&](auto tag) {
              return bptt<decltype(tag)>(c, params, h, cc, grad, X, targets, outputs, loss, policy,
                                         stream);
            });
          },
          py::arg("config"), py::arg("params"), py::arg("state_h"), py::arg("state_c"),
          py::arg("grad"), py::arg("X"), py::arg("targets"), py::arg("outputs"), py::arg("loss"),
          py::arg("on_nonfinite") = "raise", py::arg("stream") = 0,
          "Runs BPTT for RecurrentNet over the chunk X (weights fixed), adds its gradient to grad "
          "unless it or the new state is non-finite (then the streams that hold a non-finite value "
          "are reset) and moves the state on; returns what the non-finite check saw.");
    m.def("readout",
          [](const CellNetConfig& c, py::object h, py::object params, py::object targets,
             py::object outputs, py::object loss, py::object delta_h, py::object grad,
             bool accumulate, bool allow_nonfinite, std::uintptr_t stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const ArrayRef p = Reader::read(params, "params");
            FR::by_dtype(p, "params", [&](auto tag) {
              readout<decltype(tag)>(c, h, params, targets, outputs, loss, delta_h, grad,
                                     accumulate, allow_nonfinite, stream);
            });
          },
          py::arg("config"), py::arg("h"), py::arg("params"), py::arg("targets"),
          py::arg("outputs"), py::arg("loss"), py::arg("delta_h"), py::arg("grad"),
          py::arg("accumulate"), py::arg("allow_nonfinite") = false, py::arg("stream") = 0,
          "Readout, loss and dL/dh over T B rows; adds (or writes) the readout's gradient.");
  }
};

}  // namespace rtrl
