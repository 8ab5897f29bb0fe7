// Check windows (DESIGN §11): on a context that defers its checks (Ctx::kDefersChecks: the CUDA
// backend, and the SIMT host context that mirrors it), the online loop runs K steps with the
// non-finite checks folded into one device flag — no wait for the device inside the window — and
// looks at the flag once at the window's end. A window with a non-finite value anywhere is put back
// to its start from a copy of everything that carries from one step to the next, and run again with
// a check (and a wait) at every step, so that what the policy does at the offending step and after
// it is exactly what the per-step loop does: the results are the same bits either way.
//
// What carries is named by each model and algorithm in carry(S& s): s.device(data, count) for an
// array on the context, s.host(value) for a value on the host (a pointer, a counter). Each declares
// its device part in OnlineLayout::carried (an algorithm's is its sensitivities).
#pragma once

#include <cstring>
#include <stdexcept>
#include <vector>

#include "rtrl/array_ops.hpp"
#include "rtrl/common.hpp"

namespace rtrl {

// The largest copy a window takes, in elements; beyond it the loop checks every step (a step over
// that much state takes long enough that one wait per step costs little).
constexpr index_t kCheckWindowElements = index_t(16) << 20;

// Saves (kSave) what the carry() calls name into one buffer and a byte vector, or puts it back
// from them (!kSave), in the order they are named.
template <class Ctx, class T, bool kSave>
class CarriedState {
 public:
  CarriedState(Ctx& ctx, T* buffer, index_t capacity, std::vector<unsigned char>& host)
      : ctx_(ctx), buffer_(buffer), capacity_(capacity), host_(host) {
    if (kSave) host_.clear();
  }

  void device(T* data, index_t count) {
    if (count <= 0) return;
    if (at_ + count > capacity_) throw std::logic_error("check window: more carried state than declared");
    if (kSave) ctx_.for_each(count, CopyInto<T>{data, buffer_ + at_});
    else ctx_.for_each(count, CopyInto<T>{buffer_ + at_, data});
    at_ += count;
  }

  template <class V>
  void host(V& value) {
    if (kSave) {
      const auto* bytes = reinterpret_cast<const unsigned char*>(&value);
      host_.insert(host_.end(), bytes, bytes + sizeof(V));
    } else {
      std::memcpy(&value, host_.data() + host_at_, sizeof(V));
    }
    host_at_ += sizeof(V);
  }

  // Every declared element was named (a model or algorithm that declares more than it carries
  // would leave part of its state unrestored).
  void finish() const {
    if (at_ != capacity_) throw std::logic_error("check window: less carried state than declared");
  }

 private:
  Ctx& ctx_;
  T* buffer_;
  index_t capacity_;
  std::vector<unsigned char>& host_;
  index_t at_ = 0;
  size_t host_at_ = 0;
};

}  // namespace rtrl
