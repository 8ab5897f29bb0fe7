// Python bindings of the recurrent layers (one layer, one direction per call), one body for both
// backend modules. The Python layer (rtrl.nn) stacks layers and directions and owns every buffer.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "array_ref.hpp"
#include "rtrl/backend.hpp"

namespace rtrl {

inline CellKind parse_cell(const std::string& cell) {
  if (cell == "rnn") return CellKind::rnn;
  if (cell == "lstm") return CellKind::lstm;
  if (cell == "gru") return CellKind::gru;
  throw std::invalid_argument("cell: expected 'rnn', 'lstm' or 'gru', got '" + cell + "'");
}

inline Nonlinearity parse_nonlinearity(const std::string& name) {
  if (name == "tanh") return Nonlinearity::tanh;
  if (name == "relu") return Nonlinearity::relu;
  throw std::invalid_argument("nonlinearity: expected 'tanh' or 'relu', got '" + name + "'");
}

template <class Backend, class Reader>
struct LayerBindings {
  // Checks the shape of an optional array; returns its pointer or null for None.
  template <class T>
  static T* optional(py::handle obj, const char* name, const std::vector<index_t>& shape,
                     const char* dims, bool writable) {
    if (obj.is_none()) return nullptr;
    return checked<T>(Reader::read(obj, name), name, shape, dims, writable);
  }

  // A [T, B, width] array of which this direction uses columns [col, col + H).
  template <class T>
  static T* columns(py::handle obj, const char* name, index_t Tn, index_t B, index_t H, index_t col,
                    index_t* ld, bool writable) {
    const ArrayRef a = Reader::read(obj, name);
    RTRL_CHECK(a.shape.size() == 3 && a.shape[0] == Tn && a.shape[1] == B,
               std::string(name) + ": expected shape (" + std::to_string(Tn) + ", " +
                   std::to_string(B) + ", width) (time, batch, features), got " + shape_string(a.shape));
    RTRL_CHECK(col >= 0 && col + H <= a.shape[2],
               std::string(name) + ": columns [" + std::to_string(col) + ", " + std::to_string(col + H) +
                   ") do not fit its width " + std::to_string(a.shape[2]));
    *ld = a.shape[2];
    return checked<T>(a, name, a.shape, "", writable) + col;
  }


  template <class T>
  static LayerDims dims(const std::string& cell, const std::string& nonlinearity, bool reverse,
                        const ArrayRef& w_ih, const ArrayRef& w_hh, const ArrayRef& x, bool bias) {
    LayerDims d;
    d.cell = parse_cell(cell);
    d.nonlinearity = parse_nonlinearity(nonlinearity);
    d.reverse = reverse;
    d.bias = bias;
    RTRL_CHECK(x.shape.size() == 3, "x: expected a 3-d array (time, batch, input_size), got shape " +
                                        shape_string(x.shape));
    RTRL_CHECK(w_hh.shape.size() == 2, "weight_hh: expected a 2-d array, got shape " + shape_string(w_hh.shape));
    d.steps = x.shape[0];
    d.batch = x.shape[1];
    d.inputs = x.shape[2];
    d.hidden = w_hh.shape[1];
    const index_t GH = d.gates() * d.hidden;
    checked<T>(w_hh, "weight_hh", {GH, d.hidden}, "(gates * hidden_size, hidden_size)", false);
    checked<T>(w_ih, "weight_ih", {GH, d.inputs}, "(gates * hidden_size, input_size)", false);
    RTRL_CHECK(d.batch >= 1, "x: the batch axis must not be empty");
    RTRL_CHECK(double(d.steps) * double(d.batch) * double(GH) < 2147483647.0,
               "x: time * batch * gates * hidden_size exceeds the 32-bit index range of the BLAS");
    return d;
  }

  template <class T>
  static void forward(const std::string& cell, const std::string& nonlinearity, bool reverse,
                      py::object w_ih, py::object w_hh, py::object b_ih, py::object b_hh, py::object x,
                      py::object h0, py::object c0, py::object y, index_t y_col, py::object h_n,
                      py::object c_n, py::object gates, py::object c, py::object aux,
                      std::uintptr_t stream) {
    const ArrayRef x_ref = Reader::read(x, "x");
    const ArrayRef wih = Reader::read(w_ih, "weight_ih"), whh = Reader::read(w_hh, "weight_hh");
    RTRL_CHECK(b_ih.is_none() == b_hh.is_none(), "bias_ih, bias_hh: give both or neither");
    const LayerDims d = dims<T>(cell, nonlinearity, reverse, wih, whh, x_ref, !b_ih.is_none());
    const index_t Tn = d.steps, B = d.batch, H = d.hidden, GH = d.gates() * H;
    const bool lstm = d.cell == CellKind::lstm, gru = d.cell == CellKind::gru;
    LayerWeights<T> w{static_cast<const T*>(wih.data), static_cast<const T*>(whh.data),
                      optional<T>(b_ih, "bias_ih", {GH}, "(gates * hidden_size,)", false),
                      optional<T>(b_hh, "bias_hh", {GH}, "(gates * hidden_size,)", false)};
    LayerForward<T> io{};
    io.x = checked<T>(x_ref, "x", x_ref.shape, "", false);
    io.ldx = d.inputs;
    io.h0 = optional<T>(h0, "h0", {B, H}, "(batch, hidden_size)", false);
    io.c0 = lstm ? optional<T>(c0, "c0", {B, H}, "(batch, hidden_size)", false) : nullptr;
    io.y = columns<T>(y, "output", Tn, B, H, y_col, &io.ldy, true);
    io.h_n = checked<T>(Reader::read(h_n, "h_n"), "h_n", {B, H}, "(batch, hidden_size)", true);
    io.c_n = lstm ? checked<T>(Reader::read(c_n, "c_n"), "c_n", {B, H}, "(batch, hidden_size)", true) : nullptr;
    LayerSaved<T> s{};
    s.gates = checked<T>(Reader::read(gates, "gates"), "gates", {Tn, B, GH}, "(time, batch, gates * hidden)", true);
    s.c = lstm ? checked<T>(Reader::read(c, "cells"), "cells", {Tn, B, H}, "(time, batch, hidden)", true) : nullptr;
    s.aux = gru ? checked<T>(Reader::read(aux, "aux"), "aux", {Tn, B, H}, "(time, batch, hidden)", true) : nullptr;
    py::gil_scoped_release release;
    Backend::template recurrent_layer_forward<T>(stream, d, w, io, s);
  }

  template <class T>
  static void backward(const std::string& cell, const std::string& nonlinearity, bool reverse,
                       py::object w_ih, py::object w_hh, py::object b_ih, py::object b_hh,
                       py::object x, py::object h0, py::object c0, py::object y, index_t y_col,
                       py::object gates, py::object c, py::object aux, py::object dy,
                       index_t dy_col, py::object dh_n, py::object dc_n, py::object dx,
                       bool accumulate_dx, py::object dh0, py::object dc0, py::object dw_ih,
                       py::object dw_hh, py::object db_ih, py::object db_hh, std::uintptr_t stream) {
    const ArrayRef x_ref = Reader::read(x, "x");
    const ArrayRef wih = Reader::read(w_ih, "weight_ih"), whh = Reader::read(w_hh, "weight_hh");
    RTRL_CHECK(b_ih.is_none() == b_hh.is_none(), "bias_ih, bias_hh: give both or neither");
    const LayerDims d = dims<T>(cell, nonlinearity, reverse, wih, whh, x_ref, !b_ih.is_none());
    const index_t Tn = d.steps, B = d.batch, H = d.hidden, GH = d.gates() * H, I = d.inputs;
    const bool lstm = d.cell == CellKind::lstm, gru = d.cell == CellKind::gru;
    LayerWeights<T> w{static_cast<const T*>(wih.data), static_cast<const T*>(whh.data),
                      optional<T>(b_ih, "bias_ih", {GH}, "(gates * hidden_size,)", false),
                      optional<T>(b_hh, "bias_hh", {GH}, "(gates * hidden_size,)", false)};
    LayerForward<T> io{};
    io.x = checked<T>(x_ref, "x", x_ref.shape, "", false);
    io.ldx = I;
    io.h0 = optional<T>(h0, "h0", {B, H}, "(batch, hidden_size)", false);
    io.c0 = lstm ? optional<T>(c0, "c0", {B, H}, "(batch, hidden_size)", false) : nullptr;
    io.y = columns<T>(y, "output", Tn, B, H, y_col, &io.ldy, false);
    LayerSaved<T> s{};
    s.gates = checked<T>(Reader::read(gates, "gates"), "gates", {Tn, B, GH}, "(time, batch, gates * hidden)", false);
    s.c = lstm ? checked<T>(Reader::read(c, "cells"), "cells", {Tn, B, H}, "(time, batch, hidden)", false) : nullptr;
    s.aux = gru ? checked<T>(Reader::read(aux, "aux"), "aux", {Tn, B, H}, "(time, batch, hidden)", false) : nullptr;
    LayerGrads<T> g{};
    g.dy = columns<T>(dy, "d_output", Tn, B, H, dy_col, &g.lddy, false);
    g.dh_n = optional<T>(dh_n, "dh_n", {B, H}, "(batch, hidden_size)", false);
    g.dc_n = lstm ? optional<T>(dc_n, "dc_n", {B, H}, "(batch, hidden_size)", false) : nullptr;
    g.dx = checked<T>(Reader::read(dx, "dx"), "dx", {Tn, B, I}, "(time, batch, input_size)", true);
    g.accumulate_dx = accumulate_dx;
    g.dh0 = checked<T>(Reader::read(dh0, "dh0"), "dh0", {B, H}, "(batch, hidden_size)", true);
    g.dc0 = lstm ? checked<T>(Reader::read(dc0, "dc0"), "dc0", {B, H}, "(batch, hidden_size)", true) : nullptr;
    g.dw_ih = checked<T>(Reader::read(dw_ih, "grad weight_ih"), "grad weight_ih", {GH, I}, "", true);
    g.dw_hh = checked<T>(Reader::read(dw_hh, "grad weight_hh"), "grad weight_hh", {GH, H}, "", true);
    g.db_ih = w.b_ih ? checked<T>(Reader::read(db_ih, "grad bias_ih"), "grad bias_ih", {GH}, "", true) : nullptr;
    g.db_hh = w.b_ih ? checked<T>(Reader::read(db_hh, "grad bias_hh"), "grad bias_hh", {GH}, "", true) : nullptr;
    py::gil_scoped_release release;
    Backend::template recurrent_layer_backward<T>(stream, d, w, io, s, g);
  }

  static void bind(py::module_& m) {
    m.def("layer_forward",
          [](const std::string& cell, const std::string& nonlinearity, bool reverse, py::object w_ih,
             py::object w_hh, py::object b_ih, py::object b_hh, py::object x, py::object h0,
             py::object c0, py::object y, index_t y_col, py::object h_n, py::object c_n,
             py::object gates, py::object c, py::object aux, std::uintptr_t stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const ArrayRef w = Reader::read(w_ih, "weight_ih");
            if (w.kind == 'f' && w.itemsize == 4)
              forward<float>(cell, nonlinearity, reverse, w_ih, w_hh, b_ih, b_hh, x, h0, c0, y, y_col,
                             h_n, c_n, gates, c, aux, stream);
            else
              forward<double>(cell, nonlinearity, reverse, w_ih, w_hh, b_ih, b_hh, x, h0, c0, y,
                              y_col, h_n, c_n, gates, c, aux, stream);
          },
          py::arg("cell"), py::arg("nonlinearity"), py::arg("reverse"), py::arg("weight_ih"),
          py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"), py::arg("x"), py::arg("h0"),
          py::arg("c0"), py::arg("output"), py::arg("output_column"), py::arg("h_n"), py::arg("c_n"),
          py::arg("gates"), py::arg("cells"), py::arg("aux"), py::arg("stream") = 0,
          "Forward of one recurrent layer in one direction; fills output columns, h_n, c_n and the "
          "buffers backward needs.");
    m.def("layer_backward",
          [](const std::string& cell, const std::string& nonlinearity, bool reverse, py::object w_ih,
             py::object w_hh, py::object b_ih, py::object b_hh, py::object x, py::object h0,
             py::object c0, py::object y, index_t y_col, py::object gates, py::object c,
             py::object aux, py::object dy, index_t dy_col, py::object dh_n, py::object dc_n,
             py::object dx, bool accumulate_dx, py::object dh0, py::object dc0, py::object dw_ih,
             py::object dw_hh, py::object db_ih, py::object db_hh, std::uintptr_t stream) {
            [[maybe_unused]] typename Reader::Call call(stream);
            const ArrayRef w = Reader::read(w_ih, "weight_ih");
            if (w.kind == 'f' && w.itemsize == 4)
              backward<float>(cell, nonlinearity, reverse, w_ih, w_hh, b_ih, b_hh, x, h0, c0, y, y_col,
                              gates, c, aux, dy, dy_col, dh_n, dc_n, dx, accumulate_dx, dh0, dc0,
                              dw_ih, dw_hh, db_ih, db_hh, stream);
            else
              backward<double>(cell, nonlinearity, reverse, w_ih, w_hh, b_ih, b_hh, x, h0, c0, y,
                               y_col, gates, c, aux, dy, dy_col, dh_n, dc_n, dx, accumulate_dx, dh0,
                               dc0, dw_ih, dw_hh, db_ih, db_hh, stream);
          },
          py::arg("cell"), py::arg("nonlinearity"), py::arg("reverse"), py::arg("weight_ih"),
          py::arg("weight_hh"), py::arg("bias_ih"), py::arg("bias_hh"), py::arg("x"), py::arg("h0"),
          py::arg("c0"), py::arg("output"), py::arg("output_column"), py::arg("gates"),
          py::arg("cells"), py::arg("aux"), py::arg("d_output"), py::arg("d_output_column"),
          py::arg("dh_n"), py::arg("dc_n"), py::arg("dx"), py::arg("accumulate_dx"), py::arg("dh0"),
          py::arg("dc0"), py::arg("grad_weight_ih"), py::arg("grad_weight_hh"),
          py::arg("grad_bias_ih"), py::arg("grad_bias_hh"), py::arg("stream") = 0,
          "Backward of one recurrent layer in one direction; adds to the weight gradients.");
  }
};

}  // namespace rtrl
