// CUDA runtime plumbing: devices and the architectures built, pointer and stream queries, the
// cuBLAS handle of each device, the workspace allocator and the sync-check switch.
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "cuda_check.cuh"
#include "device_info.hpp"
#include "workspace.hpp"

// "sm_75,sm_80,...,compute_90", from CMAKE_CUDA_ARCHITECTURES (cuda/CMakeLists.txt).
#ifndef RTRL_CUDA_ARCHS
#define RTRL_CUDA_ARCHS ""
#endif

namespace rtrl {

static_assert(int(cudaMemoryTypeUnregistered) == 0 && int(cudaMemoryTypeHost) == 1 &&
                  int(cudaMemoryTypeDevice) == 2 && int(cudaMemoryTypeManaged) == 3,
              "MemoryKind (array_ref.hpp) mirrors cudaMemoryType");

std::pair<int, std::string> cuda_device_status() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status == cudaSuccess && count > 0) return {count, ""};
  cudaGetLastError();  // clear the (non-sticky) error so later calls start clean
  if (status == cudaErrorInsufficientDriver)
    return {0, "no usable NVIDIA driver (cudaErrorInsufficientDriver)"};
  if (status == cudaErrorNoDevice || (status == cudaSuccess && count == 0))
    return {0, "no CUDA device present (cudaErrorNoDevice)"};
  return {0, std::string("CUDA runtime error ") + cudaGetErrorName(status) + ": " +
                 cudaGetErrorString(status)};
}

std::vector<std::tuple<std::string, int, int>> cuda_device_capabilities() {
  std::vector<std::tuple<std::string, int, int>> devices;
  const auto status = cuda_device_status();
  for (int i = 0; i < status.first; ++i) {
    cudaDeviceProp prop{};
    RTRL_CUDA_CHECK(cudaGetDeviceProperties(&prop, i));
    devices.emplace_back(prop.name, prop.major, prop.minor);
  }
  return devices;
}

std::vector<std::string> cuda_device_names() {
  std::vector<std::string> names;
  for (const auto& [name, major, minor] : cuda_device_capabilities())
    names.push_back(name + " (sm_" + std::to_string(major) + std::to_string(minor) + ")");
  return names;
}

std::vector<std::string> cuda_built_architectures() {
  std::vector<std::string> archs;
  std::istringstream in(RTRL_CUDA_ARCHS);
  for (std::string a; std::getline(in, a, ',');)
    if (!a.empty()) archs.push_back(a);
  return archs;
}

int cuda_current_device() {
  int device = 0;
  RTRL_CUDA_CHECK(cudaGetDevice(&device));
  return device;
}

int cuda_stream_device(std::uintptr_t stream) {
  if (stream <= 2) return -1;
  int device = -1;
  RTRL_CUDA_CHECK(cudaStreamGetDevice(reinterpret_cast<cudaStream_t>(stream), &device));
  return device;
}

CudaPointer cuda_pointer(const void* ptr) {
  cudaPointerAttributes attr{};
  RTRL_CUDA_CHECK(cudaPointerGetAttributes(&attr, ptr));
  return CudaPointer{int(attr.type), attr.device};
}

static cudaStream_t interface_stream(std::uintptr_t s) {
  if (s == 1) return cudaStreamLegacy;
  if (s == 2) return cudaStreamPerThread;
  return reinterpret_cast<cudaStream_t>(s);
}

void cuda_stream_wait(std::uintptr_t consumer, std::uintptr_t producer) {
  cudaEvent_t event = nullptr;
  RTRL_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
  const cudaError_t recorded = cudaEventRecord(event, interface_stream(producer));
  const cudaError_t waited = recorded == cudaSuccess
                                 ? cudaStreamWaitEvent(reinterpret_cast<cudaStream_t>(consumer), event, 0)
                                 : recorded;
  cudaEventDestroy(event);  // released once the wait is done
  RTRL_CUDA_CHECK(waited);
}

bool cuda_sync_check() {
  static const bool enabled = [] {
    const char* v = std::getenv("RTRL_CUDA_SYNC_CHECK");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return enabled;
}

// One cuBLAS handle per device for each host thread, created with that device current (a handle
// belongs to the device current at cublasCreate).
std::int64_t& cuda_scratch_bytes() {
  static std::int64_t bytes = std::int64_t(256) << 20;
  return bytes;
}

std::int64_t& cuda_check_window() {
  static std::int64_t steps = 32;
  return steps;
}

cublasHandle_t cublas_handle(int device) {
  struct Handle {
    cublasHandle_t h = nullptr;
    ~Handle() {
      if (h != nullptr) cublasDestroy(h);
    }
  };
  thread_local std::vector<std::unique_ptr<Handle>> handles;
  RTRL_CHECK(device >= 0, "cuBLAS: invalid device " + std::to_string(device));
  if (handles.size() <= size_t(device)) handles.resize(size_t(device) + 1);
  if (!handles[device]) {
    auto handle = std::make_unique<Handle>();
    RTRL_CUBLAS_CHECK(cublasCreate(&handle->h));
    handles[device] = std::move(handle);
  }
  return handles[device]->h;
}

static WorkspaceAllocator g_allocator{nullptr, nullptr};

void set_workspace_allocator(const WorkspaceAllocator& allocator) { g_allocator = allocator; }

void* workspace_allocate(std::size_t bytes, std::uintptr_t stream) {
  if (g_allocator.allocate == nullptr)
    throw std::runtime_error("rtrl CUDA backend: no workspace allocator installed");
  return g_allocator.allocate(bytes, stream);
}

void workspace_release(void* ptr) noexcept {
  if (ptr != nullptr && g_allocator.release != nullptr) g_allocator.release(ptr);
}

}  // namespace rtrl
