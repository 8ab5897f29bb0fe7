// The CUDA runtime as the bindings (compiled by the host compiler) need it: devices, pointers,
// streams and the build's architectures. Defined in device_runtime.cu.
#pragma once

#include <cstdint>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace rtrl {

// (number of usable devices, why none when 0).
std::pair<int, std::string> cuda_device_status();
// "name (sm_XY)" of each device.
std::vector<std::string> cuda_device_names();
// (name, major, minor) of each device: its compute capability.
std::vector<std::tuple<std::string, int, int>> cuda_device_capabilities();
// What this module carries for each architecture: "sm_XY" (a cubin) or "compute_XY" (PTX), from
// CMAKE_CUDA_ARCHITECTURES; empty when the build named them symbolically ("native", "all").
std::vector<std::string> cuda_built_architectures();

// The calling thread's current CUDA device.
int cuda_current_device();
// The device a stream belongs to; -1 for the default streams (0, 1 = legacy, 2 = per-thread).
int cuda_stream_device(std::uintptr_t stream);

struct CudaPointer {
  int memory_type;  // cudaMemoryType: 0 unregistered, 1 host, 2 device, 3 managed
  int device;
};
CudaPointer cuda_pointer(const void* ptr);

// Orders `consumer` after the work queued so far on `producer` (an event, no host wait). Streams
// as __cuda_array_interface__ spells them: 1 = legacy default, 2 = per-thread default; consumer 0
// is the legacy default stream.
void cuda_stream_wait(std::uintptr_t consumer, std::uintptr_t producer);

// RTRL_CUDA_SYNC_CHECK=1 (read once): every kernel launch and cuBLAS call is followed by a stream
// synchronisation and an error check, so that a fault is reported at the launch that caused it.
bool cuda_sync_check();

// Bytes of product scratch a block of CudaContext::for_product_blocks may use (256 MiB; a test hook,
// set small to take the multi-block paths).
std::int64_t& cuda_scratch_bytes();

// Steps per check window of the online loop (32; algo/check_window.hpp; a test hook, 1: a check and a
// wait every step).
std::int64_t& cuda_check_window();

}  // namespace rtrl
