// The SIMT host module, rtrl._rtrl_simt: the CPU module's algorithm bindings on the SIMT host
// backend (src/simt_backend.cpp), for the tests that run the CUDA backend's partitioning on the CPU.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "bind_cell_net.hpp"
#include "bind_fully_recurrent.hpp"
#include "bind_layers.hpp"
#include "bind_reduce.hpp"
#include "src/cpu_context.hpp"

namespace py = pybind11;
using namespace rtrl;

namespace rtrl {
index_t& simt_scratch_bytes();
index_t& simt_blocks_taken();
index_t& simt_check_window();
index_t& simt_windows_replayed();
}

PYBIND11_MODULE(_rtrl_simt, m) {
  m.doc() = "rtrl SIMT host backend: the CUDA backend's partitioning on the CPU (a test backend)";
  cpu_backend_init();
  FullyRecurrentBindings<SimtBackend, HostArrays>::bind(m);
  LayerBindings<SimtBackend, HostArrays>::bind(m);
  CellNetBindings<SimtBackend, HostArrays>::bind(m);
  ReduceBindings<SimtBackend, HostArrays>::bind(m);
  m.def("_set_product_scratch_bytes", [](index_t bytes) {
    RTRL_CHECK(bytes >= 1, "bytes: expected a positive integer");
    const index_t previous = simt_scratch_bytes();
    simt_scratch_bytes() = bytes;
    return previous;
  }, py::arg("bytes"),
     "Sets the bytes of product scratch a block may use (the CUDA context's limit, 256 MiB by "
     "default); returns the previous value. Small values take the multi-block paths.");
  m.def("_product_blocks_taken", []() { return simt_blocks_taken(); },
        "Product blocks taken since the module loaded.");
  m.def("_set_check_window", [](index_t steps) {
    RTRL_CHECK(steps >= 1, "steps: expected a positive integer");
    const index_t previous = simt_check_window();
    simt_check_window() = steps;
    return previous;
  }, py::arg("steps"),
     "Sets the steps of an online loop's check window (32 by default, as on CUDA; 1: a check and a "
     "wait every step); returns the previous value.");
  m.def("_check_windows_replayed", []() { return simt_windows_replayed(); },
        "Check windows put back and run again with per-step checks since the module loaded.");
}
