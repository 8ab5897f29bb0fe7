// Where the CUDA backend's workspaces come from: the caller's allocator (DESIGN §11). The CUDA
// module installs one at import that takes the memory from CuPy's current allocator (its memory
// pool by default), so the pool, rtrl.memory and the kernels see the same memory. Defined in
// device_runtime.cu; usable from host-compiled code.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rtrl {

struct WorkspaceAllocator {
  // `bytes` (> 0) of device memory of the current device, in use by work on `stream` (0 = the
  // legacy default stream) until release. Throws (std::bad_alloc when out of memory).
  void* (*allocate)(std::size_t bytes, std::uintptr_t stream);
  // Gives back what allocate returned; work on its stream queued before may still read it, so
  // the memory may only be reused in that stream's order. Never throws.
  void (*release)(void* ptr) noexcept;
};

void set_workspace_allocator(const WorkspaceAllocator& allocator);
// Through the installed allocator; throws std::runtime_error when none is installed.
void* workspace_allocate(std::size_t bytes, std::uintptr_t stream);
void workspace_release(void* ptr) noexcept;

}  // namespace rtrl
