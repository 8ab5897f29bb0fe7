// The CUDA extension module, rtrl._rtrl_cuda: the same bindings as the CPU module over CudaBackend,
// taking device arrays through __cuda_array_interface__ and a stream from the caller (CuPy's).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bind_fully_recurrent.hpp"
#include "bind_cell_net.hpp"
#include "bind_layers.hpp"
#include "device_info.hpp"

namespace py = pybind11;
using namespace rtrl;

PYBIND11_MODULE(_rtrl_cuda, m) {
  m.doc() = "rtrl CUDA backend (CUDA + cuBLAS)";
  FullyRecurrentBindings<CudaBackend, DeviceArrays>::bind(m);
  LayerBindings<CudaBackend, DeviceArrays>::bind(m);
  CellNetBindings<CudaBackend, DeviceArrays>::bind(m);
  m.def("device_status", &cuda_device_status,
        "(number of usable CUDA devices, reason when there are none)");
  m.def("device_names", &cuda_device_names);
}
