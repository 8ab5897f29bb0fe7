// The CUDA extension module, rtrl._rtrl_cuda: the same bindings as the CPU module over CudaBackend,
// taking device arrays through __cuda_array_interface__ and a stream from the caller (CuPy's), with
// workspaces from CuPy's current allocator.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstddef>
#include <cstdint>
#include <new>
#include <string>
#include <unordered_map>

#include "bind_cell_net.hpp"
#include "bind_fully_recurrent.hpp"
#include "bind_layers.hpp"
#include "bind_reduce.hpp"
#include "device_arrays.hpp"
#include "device_info.hpp"
#include "workspace.hpp"

namespace py = pybind11;
using namespace rtrl;

namespace {

// MemoryError with CuPy's message.
struct WorkspaceOutOfMemory : std::bad_alloc {
  std::string message;
  explicit WorkspaceOutOfMemory(std::string m) : message(std::move(m)) {}
  const char* what() const noexcept override { return message.c_str(); }
};

// The CuPy memory blocks in use as workspaces, by address; a block goes back to CuPy's pool when
// its MemoryPointer is dropped. Touched only with the GIL held; never destroyed, so that no
// MemoryPointer is released after the interpreter has gone.
std::unordered_map<void*, py::object>& live_workspaces() {
  static auto* live = new std::unordered_map<void*, py::object>();
  return *live;
}

// cupy.cuda.alloc on `stream`: CuPy's pool hands a block back for reuse in the order of the
// stream it was taken on, so the allocation is made with that stream current.
void* cupy_allocate(std::size_t bytes, std::uintptr_t stream) {
  py::gil_scoped_acquire gil;
  try {
    py::object cuda = py::module_::import("cupy").attr("cuda");
    py::object current = cuda.attr("get_current_stream")();
    py::object block;
    if (current.attr("ptr").cast<std::uintptr_t>() == stream) {
      block = cuda.attr("alloc")(bytes);
    } else {
      py::object on = stream == 0 ? cuda.attr("Stream").attr("null") : cuda.attr("ExternalStream")(stream);
      on.attr("__enter__")();
      try {
        block = cuda.attr("alloc")(bytes);
      } catch (...) {
        on.attr("__exit__")(py::none(), py::none(), py::none());
        throw;
      }
      on.attr("__exit__")(py::none(), py::none(), py::none());
    }
    void* ptr = reinterpret_cast<void*>(block.attr("ptr").cast<std::uintptr_t>());
    live_workspaces().emplace(ptr, std::move(block));
    return ptr;
  } catch (py::error_already_set& e) {
    const std::string message = "rtrl CUDA workspace of " + std::to_string(bytes) +
                                " bytes from CuPy's allocator: " + e.what();
    if (e.matches(PyExc_MemoryError)) throw WorkspaceOutOfMemory(message);  // CuPy's OutOfMemoryError too
    throw std::runtime_error(message);
  }
}

void cupy_release(void* ptr) noexcept {
  if (!Py_IsInitialized()) return;
  py::gil_scoped_acquire gil;
  try {
    live_workspaces().erase(ptr);
  } catch (...) {
    PyErr_Clear();  // a block CuPy cannot take back is leaked, never a crash
  }
}

}  // namespace

PYBIND11_MODULE(_rtrl_cuda, m) {
  m.doc() = "rtrl CUDA backend (CUDA + cuBLAS)";
  set_workspace_allocator(WorkspaceAllocator{&cupy_allocate, &cupy_release});
  FullyRecurrentBindings<CudaBackend, DeviceArrays>::bind(m);
  LayerBindings<CudaBackend, DeviceArrays>::bind(m);
  CellNetBindings<CudaBackend, DeviceArrays>::bind(m);
  ReduceBindings<CudaBackend, DeviceArrays>::bind(m);
  m.def("device_status", &cuda_device_status,
        "(number of usable CUDA devices, reason when there are none)");
  m.def("device_names", &cuda_device_names);
  m.def("device_capabilities", &cuda_device_capabilities,
        "(name, major, minor) of each CUDA device: its compute capability");
  m.def("current_device", &cuda_current_device, "The calling thread's current CUDA device.");
  m.def("architectures", &cuda_built_architectures,
        "What this module carries: 'sm_XY' (a cubin) or 'compute_XY' (PTX) per architecture; empty "
        "when the build named them symbolically.");
  m.def("sync_check", &cuda_sync_check,
        "Whether RTRL_CUDA_SYNC_CHECK=1 is on: every launch followed by a synchronisation and check.");
  m.def("_set_product_scratch_bytes", [](index_t bytes) {
    RTRL_CHECK(bytes >= 1, "bytes: expected a positive integer");
    const index_t previous = cuda_scratch_bytes();
    cuda_scratch_bytes() = bytes;
    return previous;
  }, py::arg("bytes"),
     "Sets the bytes of product scratch a block may use (256 MiB by default); returns the previous "
     "value. Small values take the multi-block paths.");
  m.def("_set_check_window", [](index_t steps) {
    RTRL_CHECK(steps >= 1, "steps: expected a positive integer");
    const index_t previous = cuda_check_window();
    cuda_check_window() = steps;
    return previous;
  }, py::arg("steps"),
     "Sets the steps of an online loop's check window (32 by default; 1: a check and a wait every "
     "step); returns the previous value.");
  m.def("_workspaces_in_use", []() { return live_workspaces().size(); },
        "Number of CuPy blocks the backend holds as workspaces now (0 between calls).");
}
