// One recurrent-cell step on host arrays with the outputs allocated here: the short path behind
// rtrl.nn's cells on the CPU, where a step is a few microseconds and Python-side buffer handling
// would dominate. It runs the same layer kernel as the layers (T = 1).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstring>
#include <string>

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
    const ArrayRef wih = HostArrays::read(w_ih, "weight_ih"), whh = HostArrays::read(w_hh, "weight_hh");
    RTRL_CHECK(xr.shape.size() == 2, "input: expected shape (batch, input_size), got " + shape_string(xr.shape));
    const ArrayRef x3{xr.data, xr.kind, xr.itemsize, {1, xr.shape[0], xr.shape[1]}, xr.c_contiguous, xr.writeable};
    RTRL_CHECK(b_ih.is_none() == b_hh.is_none(), "bias_ih, bias_hh: give both or neither");
    const LayerDims d = LayerBindings<Backend, HostArrays>::template dims<T>(
        cell, nonlinearity, false, wih, whh, x3, !b_ih.is_none());
    const index_t B = d.batch, H = d.hidden, I = d.inputs, GH = d.gates() * H, BH = B * H;
    const bool lstm = d.cell == CellKind::lstm, gru = d.cell == CellKind::gru;
    using L = LayerBindings<Backend, HostArrays>;
    LayerWeights<T> w{static_cast<const T*>(wih.data), static_cast<const T*>(whh.data),
                      L::template optional<T>(b_ih, "bias_ih", {GH}, "(gates * hidden_size,)", false),
                      L::template optional<T>(b_hh, "bias_hh", {GH}, "(gates * hidden_size,)", false)};
    const T* x_in = checked<T>(x3, "input", {1, B, I}, "", false);
    const T* h_in = L::template optional<T>(h, "hx", {B, H}, "(batch, hidden_size)", false);
    const T* c_in = lstm ? L::template optional<T>(c, "cx", {B, H}, "(batch, hidden_size)", false) : nullptr;

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
  }
};

}  // namespace rtrl
