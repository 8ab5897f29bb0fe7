// The SIMT host backend: the CPU backend's entry points (cpu_backend.cpp, compiled a second time) on
// SimtContext, the host context with the CUDA backend's partitioning (simt_context.hpp). The CPU
// backend's source is the one body: every entry point it gains, this backend has too.
#include "simt_context.hpp"

#include "rtrl/backend.hpp"

namespace rtrl {
index_t& simt_scratch_bytes() {
  static index_t bytes = index_t(256) << 20;  // the CUDA context's default
  return bytes;
}
index_t& simt_blocks_taken() {
  static index_t blocks = 0;
  return blocks;
}
index_t& simt_check_window() {
  static index_t steps = 32;  // the CUDA context's default
  return steps;
}
index_t& simt_windows_replayed() {
  static index_t windows = 0;
  return windows;
}
}  // namespace rtrl

#define CpuBackend SimtBackend
#define CpuContext SimtContext
#include "cpu_backend.cpp"
#undef CpuContext
#undef CpuBackend
