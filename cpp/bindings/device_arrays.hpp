// Device arrays for the CUDA module: any object exposing __cuda_array_interface__ (CuPy, PyTorch,
// Numba). Every array a call reads must live on the call's device (the current CUDA device, where
// the model's arrays were made), and work its producer queued on another stream (the interface's
// "stream") is waited for on the call's stream before anything runs.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "array_ref.hpp"
#include "device_info.hpp"

namespace rtrl {

struct DeviceArrays {
  static constexpr bool kHostMemory = false;
  // The device and stream of one native call; every binding that reads device arrays opens one
  // first (stream: the call's cudaStream_t, 0 = the legacy default stream).
  class Call {
   public:
    explicit Call(std::uintptr_t stream) : stream_(stream), previous_(active()) { active() = this; }
    ~Call() { active() = previous_; }
    Call(const Call&) = delete;
    Call& operator=(const Call&) = delete;

    static Call& current(const char* name) {
      if (active() == nullptr)
        throw std::logic_error(std::string(name) + ": a device array was read outside a native call");
      return *active();
    }

    // Checks that `a` may be used by this call, and orders this call's stream after the array's.
    void admit(const CudaArrayInterface& a, const char* name) {
      if (device_ < 0) {
        device_ = cuda_current_device();
        const int stream_device = cuda_stream_device(stream_);
        RTRL_CHECK(stream_device < 0 || stream_device == device_,
                   "stream: the call's CUDA stream belongs to device " + std::to_string(stream_device) +
                       ", but the current device is " + std::to_string(device_));
      }
      if (a.ref.data != nullptr) {
        const CudaPointer p = cuda_pointer(a.ref.data);
        const std::string problem =
            device_pointer_problem(name, MemoryKind(p.memory_type), p.device, device_);
        RTRL_CHECK(problem.empty(), problem);
      }
      if (a.has_stream && !same_stream(a.stream, stream_)) cuda_stream_wait(stream_, a.stream);
    }

   private:
    static Call*& active() {
      thread_local Call* call = nullptr;
      return call;
    }
    std::uintptr_t stream_;
    int device_ = -1;
    Call* previous_;
  };

  static ArrayRef read(py::handle obj, const char* name) {
    CudaArrayInterface a = read_cuda_array_interface(obj, name);
    Call::current(name).admit(a, name);
    return a.ref;
  }
};

}  // namespace rtrl
