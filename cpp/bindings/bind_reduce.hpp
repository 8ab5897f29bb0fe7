// The context's reductions (rtrl/reduce.hpp) and transpose bound for the tests, one body for every
// backend module: _reduce("row_sums" | "column_sums" | "norm2", x, out, scale, accumulate, stream) and
// _transpose(x, out, stream).
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "array_ref.hpp"
#include "rtrl/backend.hpp"

namespace rtrl {

template <class Backend, class Reader>
struct ReduceBindings {
  //   x: [rows, cols]   out: [rows] (row_sums), [cols] (column_sums), [1] (norm2)
  template <class T>
  static void reduce(ReduceKind kind, const ArrayRef& xr, py::object out, double scale, bool accumulate,
                     std::uintptr_t stream) {
    RTRL_CHECK(xr.shape.size() == 2, "x: expected a 2-d array, got shape " + shape_string(xr.shape));
    const index_t rows = xr.shape[0], cols = xr.shape[1];
    const T* in = checked<T>(xr, "x", xr.shape, "", false);
    const index_t n = kind == ReduceKind::row_sums ? rows : kind == ReduceKind::column_sums ? cols : 1;
    T* o = checked<T>(Reader::read(out, "out"), "out", {n}, "", true);
    py::gil_scoped_release release;
    Backend::template reduce<T>(stream, kind, rows, cols, T(scale), accumulate, in, o);
  }

  //   x: [rows, cols]   out: [cols, rows]
  template <class T>
  static void transpose(const ArrayRef& xr, py::object out, std::uintptr_t stream) {
    RTRL_CHECK(xr.shape.size() == 2, "x: expected a 2-d array, got shape " + shape_string(xr.shape));
    const index_t rows = xr.shape[0], cols = xr.shape[1];
    const T* in = checked<T>(xr, "x", xr.shape, "", false);
    T* o = checked<T>(Reader::read(out, "out"), "out", {cols, rows}, "", true);
    py::gil_scoped_release release;
    Backend::template transpose<T>(stream, rows, cols, in, o);
  }

  static void bind(py::module_& m) {
    m.def("_reduce", [](const std::string& kind, py::object x, py::object out, double scale,
                        bool accumulate, std::uintptr_t stream) {
      ReduceKind k;
      if (kind == "row_sums") k = ReduceKind::row_sums;
      else if (kind == "column_sums") k = ReduceKind::column_sums;
      else if (kind == "norm2") k = ReduceKind::norm2;
      else throw std::invalid_argument("kind: expected 'row_sums', 'column_sums' or 'norm2', got '" + kind + "'");
      [[maybe_unused]] typename Reader::Call call(stream);
      const ArrayRef xr = Reader::read(x, "x");
      if (xr.itemsize == 4) reduce<float>(k, xr, out, scale, accumulate, stream);
      else reduce<double>(k, xr, out, scale, accumulate, stream);
    }, py::arg("kind"), py::arg("x"), py::arg("out"), py::arg("scale") = 1.0,
       py::arg("accumulate") = false, py::arg("stream") = 0,
       "One of the context's reductions (a test hook): row_sums (out[r] = scale * sum of x[r, :]), "
       "column_sums (out[c] = (out[c] +) sum of x[:, c]) or norm2 (out[0] = the 2-norm of x).");
    m.def("_transpose", [](py::object x, py::object out, std::uintptr_t stream) {
      [[maybe_unused]] typename Reader::Call call(stream);
      const ArrayRef xr = Reader::read(x, "x");
      if (xr.itemsize == 4) transpose<float>(xr, out, stream);
      else transpose<double>(xr, out, stream);
    }, py::arg("x"), py::arg("out"), py::arg("stream") = 0,
       "The context's transpose (a test hook): out = x.T.");
  }
};

}  // namespace rtrl
