// Definitions shared by every translation unit of the core, host and device alike.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

#if defined(__CUDACC__)
#define RTRL_HD __host__ __device__ __forceinline__
#elif defined(__GNUC__)
// Always inlined on the host: the per-element functors must dissolve into the vectorised loops.
#define RTRL_HD inline __attribute__((always_inline))
#else
#define RTRL_HD inline
#endif

namespace rtrl {

using index_t = std::int64_t;

// Throws std::invalid_argument (ValueError in Python) when a user-facing precondition fails.
#define RTRL_CHECK(cond, msg)                                 \
  do {                                                        \
    if (!(cond)) throw std::invalid_argument(std::string(msg)); \
  } while (0)

// The right operand of a context's for_product_blocks given as two slabs of rows over the same
// columns: K1 rows of B1 [K1, ldb1] above K2 rows of B2 [K2, ldb2] (K2 = 0: one slab).
template <class T>
struct ProductSlabs {
  const T* B1;
  index_t ldb1, K1;
  const T* B2 = nullptr;
  index_t ldb2 = 0, K2 = 0;
  index_t depth() const { return K1 + K2; }
};

template <class T>
RTRL_HD bool is_nan(T x) {
  return x != x;
}

}  // namespace rtrl
