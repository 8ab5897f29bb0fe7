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
  template <class T>
  static py::array_t<T> copy_of(const T* data, index_t rows, index_t cols) {
    py::array_t<T> out({rows, cols});
    std::memcpy(out.mutable_data(), data, size_t(rows * cols) * sizeof(T));
    return out;
  }

  // Returns (h', c' or None, saved) where saved = (x, h, c, gates, cells, aux): private copies of
  // what backward reads (None where absent).
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
    const index_t B = d.batch, H = d.hidden, I = d.inputs, GH = d.gates() * H;
    const bool lstm = d.cell == CellKind::lstm, gru = d.cell == CellKind::gru;
    using L = LayerBindings<Backend, HostArrays>;
    LayerWeights<T> w{static_cast<const T*>(wih.data), static_cast<const T*>(whh.data),
                      L::template optional<T>(b_ih, "bias_ih", {GH}, "(gates * hidden_size,)", false),
                      L::template optional<T>(b_hh, "bias_hh", {GH}, "(gates * hidden_size,)", false)};
    const T* x_in = checked<T>(x3, "input", {1, B, I}, "", false);
    const T* h_in = L::template optional<T>(h, "hx", {B, H}, "(batch, hidden_size)", false);
    const T* c_in = lstm ? L::template optional<T>(c, "cx", {B, H}, "(batch, hidden_size)", false) : nullptr;

    py::array_t<T> x_saved = copy_of(x_in, B, I);
    py::object h_saved = h_in ? py::object(copy_of(h_in, B, H)) : py::none();
    py::object c_saved = c_in ? py::object(copy_of(c_in, B, H)) : py::none();
    py::array_t<T> h_new({B, H});
    py::array_t<T> gates({index_t(1), B, GH});
    py::object cells = lstm ? py::object(py::array_t<T>({index_t(1), B, H})) : py::none();
    py::object aux = gru ? py::object(py::array_t<T>({index_t(1), B, H})) : py::none();
    py::object c_new = lstm ? py::object(py::array_t<T>({B, H})) : py::none();

    LayerForward<T> io{};
    io.x = x_saved.data();
    io.ldx = I;
    io.h0 = h_saved.is_none() ? nullptr : h_saved.cast<py::array_t<T>>().data();
    io.c0 = c_saved.is_none() ? nullptr : c_saved.cast<py::array_t<T>>().data();
    io.y = h_new.mutable_data();  // for T = 1 the output is h'
    io.ldy = H;
    io.h_n = h_new.mutable_data();
    io.c_n = lstm ? c_new.cast<py::array_t<T>>().mutable_data() : nullptr;
    LayerSaved<T> s{};
    s.gates = gates.mutable_data();
    s.c = lstm ? cells.cast<py::array_t<T>>().mutable_data() : nullptr;
    s.aux = gru ? aux.cast<py::array_t<T>>().mutable_data() : nullptr;
    {
      py::gil_scoped_release release;
      Backend::template recurrent_layer_forward<T>(0, d, w, io, s);
    }
    return py::make_tuple(h_new, c_new,
                          py::make_tuple(x_saved, h_saved, c_saved, gates, cells, aux));
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
          "One cell step on host arrays: (h', c' or None, saved buffers for backward).");
  }
};

}  // namespace rtrl
