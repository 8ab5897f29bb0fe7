// A view of an array handed in from Python (NumPy through the buffer protocol, CuPy through
// __cuda_array_interface__) and the checks every argument goes through before a native call.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <vector>

#include "rtrl/common.hpp"

namespace rtrl {
namespace py = pybind11;

struct ArrayRef {
  void* data = nullptr;
  char kind = '?';  // NumPy dtype kind: 'f', 'i', ...
  int itemsize = 0;
  std::vector<index_t> shape;
  bool c_contiguous = false;
  bool writeable = false;
};

inline std::string shape_string(const std::vector<index_t>& shape) {
  std::ostringstream out;
  out << "(";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << (shape.size() == 1 ? ",)" : ")");
  return out.str();
}

template <class T>
const char* dtype_name() {
  return sizeof(T) == 4 ? "float32" : "float64";
}

// Host arrays: NumPy ndarrays only.
struct HostArrays {
  static ArrayRef read(py::handle obj, const char* name) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                           std::string(py::str(py::type::of(obj).attr("__name__"))));
    auto arr = py::reinterpret_borrow<py::array>(obj);
    ArrayRef ref;
    ref.data = const_cast<void*>(arr.data());
    ref.kind = arr.dtype().kind();
    ref.itemsize = int(arr.itemsize());
    for (py::ssize_t i = 0; i < arr.ndim(); ++i) ref.shape.push_back(arr.shape(i));
    ref.c_contiguous = (arr.flags() & py::array::c_style) != 0;
    ref.writeable = arr.writeable();
    return ref;
  }
};

// Device arrays: any object exposing __cuda_array_interface__ (CuPy, PyTorch, Numba).
struct DeviceArrays {
  static ArrayRef read(py::handle obj, const char* name) {
    if (!py::hasattr(obj, "__cuda_array_interface__"))
      throw py::type_error(std::string(name) + ": expected a CUDA device array (cupy.ndarray), got " +
                           std::string(py::str(py::type::of(obj).attr("__name__"))));
    py::dict iface = obj.attr("__cuda_array_interface__");
    ArrayRef ref;
    const std::string typestr = py::str(iface["typestr"]);
    ref.kind = typestr.size() > 1 ? typestr[1] : '?';
    ref.itemsize = typestr.size() > 2 ? std::stoi(typestr.substr(2)) : 0;
    for (auto dim : py::tuple(iface["shape"])) ref.shape.push_back(dim.cast<index_t>());
    py::tuple data = iface["data"];
    ref.data = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
    ref.writeable = !data[1].cast<bool>();
    ref.c_contiguous = true;
    if (iface.contains("strides") && !iface["strides"].is_none()) {
      index_t expected = ref.itemsize;
      py::tuple strides = iface["strides"];
      for (size_t i = ref.shape.size(); i-- > 0;) {
        if (ref.shape[i] != 1 && strides[i].cast<index_t>() != expected) ref.c_contiguous = false;
        expected *= ref.shape[i];
      }
    }
    return ref;
  }
};

// Checks dtype (TypeError), shape and contiguity (ValueError) and returns the typed pointer.
// `dims` names the axes, e.g. "(time, streams, inputs)".
template <class T>
T* checked(const ArrayRef& a, const char* name, const std::vector<index_t>& shape,
           const char* dims, bool writable) {
  if (a.kind != 'f' || a.itemsize != int(sizeof(T)))
    throw py::type_error(std::string(name) + ": expected dtype " + dtype_name<T>() + ", got kind '" +
                         a.kind + "' with " + std::to_string(a.itemsize) + "-byte items");
  if (a.shape != shape)
    throw std::invalid_argument(std::string(name) + ": expected shape " + shape_string(shape) +
                                " " + dims + ", got " + shape_string(a.shape));
  RTRL_CHECK(a.c_contiguous, std::string(name) + ": expected a C-contiguous array");
  RTRL_CHECK(!writable || a.writeable, std::string(name) + ": expected a writeable array");
  return static_cast<T*>(a.data);
}

}  // namespace rtrl
