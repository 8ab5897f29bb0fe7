// A counter-based random generator (Philox4x32-10, Salmon et al. 2011) for the stochastic learners
// (DESIGN §9): a number is a pure function of (seed, step, stream, element), so that CPU and CUDA,
// any thread count and a resumed learner draw the same ones.
#pragma once

#include <cstdint>

#include "rtrl/common.hpp"

namespace rtrl {

struct Philox {
  std::uint64_t seed;
  std::int64_t first_stream = 0;  // the global index of this process's stream 0 (stream-parallel learning)

  RTRL_HD static void mulhilo(std::uint32_t a, std::uint32_t b, std::uint32_t& hi, std::uint32_t& lo) {
    const std::uint64_t p = std::uint64_t(a) * std::uint64_t(b);
    hi = std::uint32_t(p >> 32);
    lo = std::uint32_t(p);
  }

  // The four 32-bit words of Philox4x32-10 at counter (block, stream, step low, step high) under the
  // key (seed low, seed high).
  RTRL_HD void words(std::int64_t step, index_t stream, index_t block, std::uint32_t out[4]) const {
    std::uint32_t c0 = std::uint32_t(block), c1 = std::uint32_t(first_stream + stream);
    std::uint32_t c2 = std::uint32_t(std::uint64_t(step)), c3 = std::uint32_t(std::uint64_t(step) >> 32);
    std::uint32_t k0 = std::uint32_t(seed), k1 = std::uint32_t(seed >> 32);
    for (int round = 0; round < 10; ++round) {
      std::uint32_t hi0, lo0, hi1, lo1;
      mulhilo(0xD2511F53u, c0, hi0, lo0);
      mulhilo(0xCD9E8D57u, c2, hi1, lo1);
      const std::uint32_t n0 = hi1 ^ c1 ^ k0, n2 = hi0 ^ c3 ^ k1;
      c0 = n0;
      c1 = lo1;
      c2 = n2;
      c3 = lo0;
      k0 += 0x9E3779B9u;
      k1 += 0xBB67AE85u;
    }
    out[0] = c0;
    out[1] = c1;
    out[2] = c2;
    out[3] = c3;
  }

  // Element e's sign is bit e mod 32 of word (e / 32) mod 4 of the block e / kSignsPerBlock: one
  // generator call gives kSignsPerBlock signs (sign_of).
  static constexpr index_t kSignsPerBlock = 128;
  template <class T>
  RTRL_HD static T sign_of(const std::uint32_t w[4], index_t e) {
    return ((w[(e / 32) % 4] >> (e % 32)) & 1u) ? T(1) : T(-1);
  }

  // +1 or -1 with equal probability.
  template <class T>
  RTRL_HD T sign(std::int64_t step, index_t stream, index_t element) const {
    std::uint32_t w[4];
    words(step, stream, element / kSignsPerBlock, w);
    return sign_of<T>(w, element);
  }
};

}  // namespace rtrl
