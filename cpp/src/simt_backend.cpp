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
}  // namespace rtrl

#define CpuBackend SimtBackend
#define CpuContext SimtContext
#include "cpu_backend.cpp"
#undef CpuContext
#undef CpuBackend
