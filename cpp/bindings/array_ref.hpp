// A view of an array handed in from Python (NumPy through the buffer protocol, CuPy through
// __cuda_array_interface__) and the checks every argument goes through before a native call. The
// device-side reader, which also asks the CUDA runtime about each pointer, is device_arrays.hpp.
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

// The byte-order character NumPy and __cuda_array_interface__ use for the other endianness: an
// array of it would be read as garbage by the native code ('<' and '>' as in "<f4").
inline char foreign_byte_order() {
  const std::uint16_t one = 1;
  return *reinterpret_cast<const unsigned char*>(&one) == 1 ? '>' : '<';
}

// Host arrays: NumPy ndarrays only; a call on them needs no device or stream bookkeeping (Call).
// Arrays of the other byte order or unaligned ones are refused (the Python layer copies them).
struct HostArrays {
  static constexpr bool kHostMemory = true;
  struct Call {
    explicit Call(std::uintptr_t /*stream*/) {}
  };
  static ArrayRef read(py::handle obj, const char* name) {
    if (!py::isinstance<py::array>(obj))
      throw py::type_error(std::string(name) + ": expected a numpy.ndarray, got " +
                           std::string(py::str(py::type::of(obj).attr("__name__"))));
    auto arr = py::reinterpret_borrow<py::array>(obj);
    RTRL_CHECK(arr.dtype().byteorder() != foreign_byte_order(),
               std::string(name) + ": expected an array of the machine's byte order, got dtype " +
                   std::string(py::str(arr.dtype())));
    RTRL_CHECK((arr.flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0,
               std::string(name) + ": expected an aligned array (copy it first)");
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

// What __cuda_array_interface__ (version 3) says about one array. The stream field: absent or
// None = nothing to wait for; 1 = the legacy default stream, 2 = the per-thread default stream,
// any other value a cudaStream_t; 0 is disallowed by the protocol.
struct CudaArrayInterface {
  ArrayRef ref;
  bool has_stream = false;
  std::uintptr_t stream = 0;
};

inline CudaArrayInterface read_cuda_array_interface(py::handle obj, const char* name) {
  if (!py::hasattr(obj, "__cuda_array_interface__"))
    throw py::type_error(std::string(name) + ": expected a CUDA device array (cupy.ndarray), got " +
                         std::string(py::str(py::type::of(obj).attr("__name__"))));
  py::object attr = obj.attr("__cuda_array_interface__");
  if (!py::isinstance<py::dict>(attr))
    throw py::type_error(std::string(name) + ": __cuda_array_interface__ is not a dict");
  py::dict iface = attr;
  for (const char* key : {"typestr", "shape", "data"})
    RTRL_CHECK(iface.contains(key), std::string(name) + ": __cuda_array_interface__ has no '" + key + "'");
  CudaArrayInterface out;
  ArrayRef& ref = out.ref;
  const std::string typestr = py::str(iface["typestr"]);
  RTRL_CHECK(typestr.empty() || typestr[0] != foreign_byte_order(),
             std::string(name) + ": expected an array of the machine's byte order, got typestr '" + typestr + "'");
  ref.kind = typestr.size() > 1 ? typestr[1] : '?';
  ref.itemsize = 0;
  if (typestr.size() > 2 && typestr.find_first_not_of("0123456789", 2) == std::string::npos)
    ref.itemsize = std::stoi(typestr.substr(2));
  for (auto dim : py::tuple(iface["shape"])) ref.shape.push_back(dim.cast<index_t>());
  py::tuple data = iface["data"];
  RTRL_CHECK(data.size() == 2, std::string(name) + ": __cuda_array_interface__['data'] is not (pointer, read_only)");
  ref.data = reinterpret_cast<void*>(data[0].cast<std::uintptr_t>());
  ref.writeable = !data[1].cast<bool>();
  ref.c_contiguous = true;
  if (iface.contains("strides") && !iface["strides"].is_none()) {
    index_t expected = ref.itemsize;
    py::tuple strides = iface["strides"];
    RTRL_CHECK(strides.size() == ref.shape.size(),
               std::string(name) + ": __cuda_array_interface__ strides and shape differ in length");
    for (size_t i = ref.shape.size(); i-- > 0;) {
      if (ref.shape[i] != 1 && strides[i].cast<index_t>() != expected) ref.c_contiguous = false;
      expected *= ref.shape[i];
    }
  }
  if (iface.contains("stream") && !iface["stream"].is_none()) {
    py::object stream = iface["stream"];
    if (!py::isinstance<py::int_>(stream) || py::isinstance<py::bool_>(stream))
      throw py::type_error(std::string(name) + ": __cuda_array_interface__['stream'] must be an integer or None");
    RTRL_CHECK(py::int_(stream) >= py::int_(0),
               std::string(name) + ": __cuda_array_interface__['stream'] is negative");
    out.stream = stream.cast<std::uintptr_t>();
    RTRL_CHECK(out.stream != 0, std::string(name) +
                                    ": __cuda_array_interface__['stream'] is 0, which the protocol "
                                    "disallows (1 = legacy default stream, 2 = per-thread default stream)");
    out.has_stream = true;
  }
  return out;
}

// True when an array's interface stream is the stream a call runs on: a call's stream 0 is the
// legacy default stream, which the interface spells 1.
inline bool same_stream(std::uintptr_t interface_stream, std::uintptr_t call_stream) {
  return interface_stream == (call_stream == 0 ? std::uintptr_t(1) : call_stream);
}

// The kinds of memory cudaPointerGetAttributes reports (the values of cudaMemoryType).
enum class MemoryKind : int { unregistered = 0, host = 1, device = 2, managed = 3 };

// Why an array at memory of `kind` on `pointer_device` cannot be used by a call on `call_device`,
// or "" when it can (device memory of that device, or managed memory).
inline std::string device_pointer_problem(const char* name, MemoryKind kind, int pointer_device,
                                          int call_device) {
  const std::string here = "CUDA device " + std::to_string(call_device);
  if (kind == MemoryKind::managed) return "";
  if (kind == MemoryKind::device) {
    if (pointer_device == call_device) return "";
    return std::string(name) + ": the array lives on CUDA device " + std::to_string(pointer_device) +
           ", but this call runs on " + here +
           " (the current device, where the model's arrays live); copy it there (cupy.asarray under "
           "`with cupy.cuda.Device(" + std::to_string(call_device) + "):`) or make that device current";
  }
  return std::string(name) + ": the array's pointer is " +
         (kind == MemoryKind::host ? "pinned host memory" : "not CUDA memory (host memory?)") +
         ", not memory of " + here + "; pass a device array (cupy.asarray)";
}

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
