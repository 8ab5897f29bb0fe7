// Error checks for CUDA runtime and cuBLAS calls: failures throw std::runtime_error with file:line.
//
// Kernel launches and cuBLAS calls are checked where they are issued (RTRL_CUDA_CHECK_LAUNCH,
// RTRL_CUBLAS_CHECK_ON). A fault inside a kernel surfaces only at a later synchronisation; with the
// environment variable RTRL_CUDA_SYNC_CHECK=1 (read once, at the first check) every launch and
// cuBLAS call is followed by a synchronisation of its stream, so a fault is reported at the launch
// that caused it, with the kernel's functor and file:line. It is a debugging mode: slow.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "device_info.hpp"
#include "rtrl/common.hpp"

namespace rtrl {

inline void cuda_check(cudaError_t status, const char* what, const char* file, int line) {
  if (status != cudaSuccess)
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what + ": " +
                             cudaGetErrorName(status) + " (" + cudaGetErrorString(status) + ")");
}

inline void cublas_check(cublasStatus_t status, const char* what, const char* file, int line) {
  if (status != CUBLAS_STATUS_SUCCESS)
    throw std::runtime_error(std::string(file) + ":" + std::to_string(line) + ": " + what +
                             ": cuBLAS status " + std::to_string(int(status)));
}

// After a launch on `stream`: a bad configuration shows up in cudaGetLastError; in sync-check mode
// the stream is also waited for, so that a fault in the kernel is reported here.
inline void check_launch(cudaStream_t stream, const char* what, const char* file, int line) {
  cuda_check(cudaGetLastError(), what, file, line);
  if (cuda_sync_check())
    cuda_check(cudaStreamSynchronize(stream), (std::string(what) + " (RTRL_CUDA_SYNC_CHECK)").c_str(),
               file, line);
}

}  // namespace rtrl

#define RTRL_CUDA_CHECK(call) ::rtrl::cuda_check((call), #call, __FILE__, __LINE__)
#define RTRL_CUBLAS_CHECK(call) ::rtrl::cublas_check((call), #call, __FILE__, __LINE__)
// A kernel launch on `stream`; `what` names it (the launching function, with its functor type).
#define RTRL_CUDA_CHECK_LAUNCH(stream, what) ::rtrl::check_launch((stream), (what), __FILE__, __LINE__)
// A cuBLAS call issued on `stream`: its status, and in sync-check mode the stream's completion.
#define RTRL_CUBLAS_CHECK_ON(stream, call)                           \
  do {                                                               \
    ::rtrl::cublas_check((call), #call, __FILE__, __LINE__);         \
    ::rtrl::check_launch((stream), #call, __FILE__, __LINE__);       \
  } while (0)
