// Error checks for CUDA runtime and cuBLAS calls: failures throw std::runtime_error with file:line.
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

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

}  // namespace rtrl

#define RTRL_CUDA_CHECK(call) ::rtrl::cuda_check((call), #call, __FILE__, __LINE__)
#define RTRL_CUBLAS_CHECK(call) ::rtrl::cublas_check((call), #call, __FILE__, __LINE__)
// After a kernel launch: a bad configuration shows up in cudaGetLastError.
#define RTRL_CUDA_CHECK_LAUNCH() ::rtrl::cuda_check(cudaGetLastError(), "kernel launch", __FILE__, __LINE__)
