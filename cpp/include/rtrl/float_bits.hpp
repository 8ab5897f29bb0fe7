// Floats read as unsigned integers: magnitudes compared and reduced with integer operations
// (the CPU's finiteness check and the update bounds of algo/update_bounds.hpp), and values selected.
#pragma once

#include <cstdint>
#include <cstring>
#include <limits>
#include <type_traits>

#include "rtrl/common.hpp"

namespace rtrl {

// A float's bits as an unsigned integer of its size: for values of one sign their order is the
// order of the magnitudes, so that an integer max (one cycle) reduces magnitudes at the load rate.
template <class T>
using FloatBits = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;

template <class T>
RTRL_HD FloatBits<T> raw_bits(T x) {
#if defined(__CUDA_ARCH__)
  if constexpr (sizeof(T) == 4) return __float_as_uint(x);
  else return FloatBits<T>(__double_as_longlong(x));
#else
  FloatBits<T> bits;
  __builtin_memcpy(&bits, &x, sizeof(T));
  return bits;
#endif
}

// c ? a : b, chosen on the host with integer operations: a loop that picks one of two values per
// element then has no branch for the compiler to keep, and vectorises where IEEE trapping rules
// would forbid running a branch's arithmetic unconditionally.
template <class T>
RTRL_HD T select_bits(bool c, T a, T b) {
#if defined(__CUDA_ARCH__)
  return c ? a : b;
#else
  const FloatBits<T> pick = FloatBits<T>(0) - FloatBits<T>(c);
  const FloatBits<T> bits = (raw_bits(a) & pick) | (raw_bits(b) & ~pick);
  T x;
  __builtin_memcpy(&x, &bits, sizeof(T));
  return x;
#endif
}

// |x|'s bits; those of +-inf and NaN are at least finite_limit_bits.
template <class T>
RTRL_HD FloatBits<T> magnitude_bits(T x) {
  return raw_bits(x) & (~FloatBits<T>(0) >> 1);
}

template <class T>
RTRL_HD constexpr FloatBits<T> finite_limit_bits() {
  return sizeof(T) == 4 ? FloatBits<T>(0x7f800000u) : FloatBits<T>(0x7ff0000000000000ull);
}

// The magnitude whose bits these are, +inf for bits of no finite non-negative value.
template <class T>
T magnitude_from_bits(FloatBits<T> bits) {
  if (bits >= finite_limit_bits<T>()) return std::numeric_limits<T>::infinity();
  T x;
  std::memcpy(&x, &bits, sizeof(T));
  return x;
}

}  // namespace rtrl
