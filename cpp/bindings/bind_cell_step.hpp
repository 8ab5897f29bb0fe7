// One recurrent-cell step on host arrays with the outputs allocated here: the short path behind
// rtrl.nn's cells on the CPU, where a step is a few microseconds and Python-side buffer handling
// would dominate. It runs the same layer kernel as the layers (T = 1).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <initializer_list>
#include <string>
#include <utility>

#include "array_ref.hpp"
#include "bind_layers.hpp"
#include "rtrl/backend.hpp"

namespace rtrl {

template <class Backend>
struct CellStepBindings {
  static constexpr index_t kHoldGilMultiplyAdds = 1 << 16;

  // Returns (h', c' or None, saved): saved is one flat array holding, in order, private copies of
  // x [B, I], h [B, H] and c [B, H] (zeros where not given), then gates [B, G H], cells [B, H] and
  // aux [B, H] (the layer kernel's saved buffers for T = 1). Three allocations per step (h' and c'
  // are arrays of their own, so that keeping them does not keep the rest): at a few microseconds
  // a step, each array made here costs as much as the arithmetic.
  template <class T>
  static py::tuple step(const std::string& cell, const std::string& nonlinearity, py::object w_ih,
                        py::object w_hh, py::object b_ih, py::object b_hh, py::object x,
                        py::object h, py::object c) {
    const ArrayRef xr = HostArrays::read(x, "input");
    RTRL_CHECK(xr.shape.size() == 2, "input: expected shape (batch, input_size), got " + shape_string(xr.shape));
    const ArrayRef x3{xr.data, xr.kind, xr.itemsize, {1, xr.shape[0], xr.shape[1]}, xr.c_contiguous, xr.writeable};
    const auto [d, w] = layer_of<T>(cell, nonlinearity, w_ih, w_hh, b_ih, b_hh, x3);
    const index_t B = d.batch, H = d.hidden, I = d.inputs;
    using L = LayerBindings<Backend, HostArrays>;
    const T* x_in = checked<T>(x3, "input", {1, B, I}, "", false);
    const T* h_in = L::template optional<T>(h, "hx", {B, H}, "(batch, hidden_size)", false);
    const T* c_in = d.cell == CellKind::lstm
                        ? L::template optional<T>(c, "cx", {B, H}, "(batch, hidden_size)", false)
                        : nullptr;
    return run<T>(d, w, x_in, h_in, c_in);
  }

  // The one-layer, one-step sizes and weights for an input x3 [1, B, I] (the weights' shapes
  // checked against each other and the input, the biases' shapes and dtypes).
  template <class T>
  static std::pair<LayerDims, LayerWeights<T>> layer_of(const std::string& cell,
                                                       const std::string& nonlinearity,
                                                       py::object w_ih, py::object w_hh,
                                                       py::object b_ih, py::object b_hh,
                                                       const ArrayRef& x3) {
    using L = LayerBindings<Backend, HostArrays>;
    const ArrayRef wih = HostArrays::read(w_ih, "weight_ih"), whh = HostArrays::read(w_hh, "weight_hh");
    RTRL_CHECK(b_ih.is_none() == b_hh.is_none(), "bias_ih, bias_hh: give both or neither");
    const LayerDims d = L::template dims<T>(cell, nonlinearity, false, wih, whh, x3, !b_ih.is_none());
    const index_t GH = d.gates() * d.hidden;
    const LayerWeights<T> w{static_cast<const T*>(wih.data), static_cast<const T*>(whh.data),
                            L::template optional<T>(b_ih, "bias_ih", {GH}, "(gates * hidden_size,)", false),
                            L::template optional<T>(b_hh, "bias_hh", {GH}, "(gates * hidden_size,)", false)};
    return {d, w};
  }

  // The step itself on checked arguments:   x: [B, I]   h, c: [B, H] or null (zeros)
  template <class T>
  static py::tuple run(const LayerDims& d, const LayerWeights<T>& w, const T* x_in, const T* h_in,
                       const T* c_in) {
    const index_t B = d.batch, H = d.hidden, I = d.inputs, GH = d.gates() * H, BH = B * H;
    const bool lstm = d.cell == CellKind::lstm, gru = d.cell == CellKind::gru;
    py::array_t<T> saved(B * I + 4 * BH + B * GH);
    T* x_saved = saved.mutable_data();
    T* h_saved = x_saved + B * I;
    T* c_saved = h_saved + BH;
    T* gates = c_saved + BH;
    T* cells = gates + B * GH;
    T* aux = cells + BH;
    py::array_t<T> h_out({B, H});
    py::object c_out = lstm ? py::object(py::array_t<T>({B, H})) : py::none();
    T* h_new = h_out.mutable_data();
    T* c_new = lstm ? c_out.cast<py::array_t<T>>().mutable_data() : nullptr;
    std::memcpy(x_saved, x_in, size_t(B * I) * sizeof(T));
    auto keep = [&](const T* in, T* out) {
      if (in) std::memcpy(out, in, size_t(BH) * sizeof(T));
      else std::memset(out, 0, size_t(BH) * sizeof(T));
    };
    keep(h_in, h_saved);
    keep(c_in, c_saved);

    LayerForward<T> io{};
    io.x = x_saved;
    io.ldx = I;
    io.h0 = h_saved;
    io.c0 = lstm ? c_saved : nullptr;
    io.y = h_new;  // for T = 1 the output is h'
    io.ldy = H;
    io.h_n = h_new;
    io.c_n = c_new;
    LayerSaved<T> s{};
    s.gates = gates;
    s.c = lstm ? cells : nullptr;
    s.aux = gru ? aux : nullptr;
    // A step of a few microseconds runs with the GIL held: releasing and taking it back would
    // cost a good part of that; larger steps let other Python threads run.
    if (B * GH * (I + H) < kHoldGilMultiplyAdds) {
      Backend::template recurrent_layer_forward<T>(0, d, w, io, s);
    } else {
      py::gil_scoped_release release;
      Backend::template recurrent_layer_forward<T>(0, d, w, io, s);
    }
    return py::make_tuple(h_out, c_out, saved);
  }

  // `obj` as an aligned, C-contiguous numpy.ndarray (exactly) of T (native byte order) with this
  // shape, else null.
  template <class T>
  static const T* plain(py::handle obj, std::initializer_list<index_t> shape) {
    if (Py_TYPE(obj.ptr()) != py::detail::npy_api::get().PyArray_Type_ ||
        !py::array_t<T, py::array::c_style>::check_(obj))
      return nullptr;
    const auto a = py::reinterpret_borrow<py::array>(obj);
    if (a.ndim() != py::ssize_t(shape.size()) || !(a.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_))
      return nullptr;
    py::ssize_t i = 0;
    for (const index_t extent : shape)
      if (a.shape(i++) != extent) return nullptr;
    return static_cast<const T*>(a.data());
  }

  // A cell's whole call (input, hx) when the arguments can be used as they are: input a
  // C-contiguous NumPy array of the weights' dtype, (B, I) or (I,), hx None, or h (RNN, GRU) or a
  // pair (h, c) (LSTM) of such arrays (or None) shaped like the state. Returns
  // (h', c' or None, saved, unbatched) as step() with h', c' of shape (B, H), or None for any other
  // arguments: the Python path then converts them or says what is wrong.
  template <class T>
  static py::object call(const std::string& cell, const std::string& nonlinearity, py::object w_ih,
                         py::object w_hh, py::object b_ih, py::object b_hh, py::handle input,
                         py::handle hx) {
    const index_t I = py::reinterpret_borrow<py::array>(w_ih).shape(1);
    const index_t H = py::reinterpret_borrow<py::array>(w_hh).shape(1);
    if (Py_TYPE(input.ptr()) != py::detail::npy_api::get().PyArray_Type_) return py::none();
    const py::ssize_t ndim = py::reinterpret_borrow<py::array>(input).ndim();
    if (ndim != 1 && ndim != 2) return py::none();
    const bool unbatched = ndim == 1;
    const index_t B = unbatched ? 1 : py::reinterpret_borrow<py::array>(input).shape(0);
    const T* x_in = unbatched ? plain<T>(input, {I}) : plain<T>(input, {B, I});
    if (x_in == nullptr) return py::none();
    const bool lstm = cell == "lstm";
    py::handle h = py::none(), c = py::none();
    if (lstm && !hx.is_none()) {
      if (!PyTuple_Check(hx.ptr()) || PyTuple_GET_SIZE(hx.ptr()) != 2) return py::none();
      h = PyTuple_GET_ITEM(hx.ptr(), 0);
      c = PyTuple_GET_ITEM(hx.ptr(), 1);
    } else if (!lstm) {
      h = hx;
    }
    auto state = [&](py::handle v, const T*& out) {
      if (v.is_none()) return true;
      out = unbatched ? plain<T>(v, {H}) : plain<T>(v, {B, H});
      return out != nullptr;
    };
    const T* h_in = nullptr;
    const T* c_in = nullptr;
    if (!state(h, h_in) || !state(c, c_in)) return py::none();

    const ArrayRef x3{const_cast<T*>(x_in), 'f', int(sizeof(T)), {1, B, I}, true, false};
    const auto [d, w] = layer_of<T>(cell, nonlinearity, w_ih, w_hh, b_ih, b_hh, x3);
    const py::tuple out = run<T>(d, w, x_in, h_in, c_in);
    return py::make_tuple(out[0], out[1], out[2], py::bool_(unbatched));
  }

  static void bind(py::module_& m) {
    m.def("cell_step",
          [](const std::string& cell, const std::string& nonlinearity, py::object w_ih,
             py::object w_hh, py::object b_ih, py::object b_hh, py::object x, py::object h,
             py::object c) {
            const ArrayRef w = HostArrays::read(w_ih, "weight_ih");
            if (w.kind == 'f' && w.itemsize == 4)
              return step<float>(cell, nonlinearity, w_ih, w_hh, b_ih, b_hh, x, h, c);
            return step<double>(cell, nonlinearity, w_ih, w_hh, b_ih, b_hh, x, h, c);
          },
          py::arg("cell"), py::arg("nonlinearity"), py::arg("weight_ih"), py::arg("weight_hh"),
          py::arg("bias_ih"), py::arg("bias_hh"), py::arg("input"), py::arg("hx"), py::arg("cx"),
          "One cell step on host arrays: (h', c' or None, saved): saved is one flat array of x, h, c, "
          "gates, cells, aux (see bind_cell_step.hpp).");
    m.def("cell_call",
          [](const std::string& cell, const std::string& nonlinearity, py::object w_ih,
             py::object w_hh, py::object b_ih, py::object b_hh, py::handle input, py::handle hx) {
            if (py::array_t<float>::check_(w_ih))
              return call<float>(cell, nonlinearity, w_ih, w_hh, b_ih, b_hh, input, hx);
            return call<double>(cell, nonlinearity, w_ih, w_hh, b_ih, b_hh, input, hx);
          },
          py::arg("cell"), py::arg("nonlinearity"), py::arg("weight_ih"), py::arg("weight_hh"),
          py::arg("bias_ih"), py::arg("bias_hh"), py::arg("input"), py::arg("hx"),
          "A cell's call (input, hx) on host arrays that need no conversion: (h', c' or None, saved, "
          "unbatched), or None when the arguments need the Python path (see bind_cell_step.hpp).");
  }
};

}  // namespace rtrl
