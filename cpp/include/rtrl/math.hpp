// Scalar math with one spelling for host and device code, float and double.
//
// On the device these are CUDA's own functions. On the host, exp and tanh are written out here
// (Cody-Waite range reduction and the minimax/Pade approximations of Cephes) so that loops over
// them vectorise: libm's expf/tanhf are opaque calls that keep a loop scalar. Their choices are
// select_bits (with a ternary the compiler may sink one side's arithmetic into a branch, which IEEE
// trapping rules then keep scalar) and their multiply-adds are fma, so that a vector lane and the
// scalar remainder round alike. Accuracy is within a few ulp over the whole range; NaN propagates,
// +-inf saturate.
#pragma once

#include <cmath>
#include <cstdint>

#include "rtrl/common.hpp"
#include "rtrl/float_bits.hpp"

namespace rtrl {
namespace math {

RTRL_HD float sqrt(float x) { return ::sqrtf(x); }
RTRL_HD double sqrt(double x) { return ::sqrt(x); }
RTRL_HD float log(float x) { return ::logf(x); }
RTRL_HD double log(double x) { return ::log(x); }

// a * b + c, rounded once where the machine has a fused multiply-add (the CUDA device; a host
// instruction set with FMA), else twice. Written out where a sum's rounding must not depend on how
// the compiler contracts an expression: a loop's vector body and its remainder (and so one thread
// count and another, whose runs split a row at different columns) then round alike.
#if defined(__CUDA_ARCH__)
__device__ __forceinline__ float fma(float a, float b, float c) { return ::fmaf(a, b, c); }
__device__ __forceinline__ double fma(double a, double b, double c) { return ::fma(a, b, c); }
#elif defined(__FMA__) || defined(__ARM_FEATURE_FMA)
RTRL_HD float fma(float a, float b, float c) { return __builtin_fmaf(a, b, c); }
RTRL_HD double fma(double a, double b, double c) { return __builtin_fma(a, b, c); }
#else
RTRL_HD float fma(float a, float b, float c) { return a * b + c; }
RTRL_HD double fma(double a, double b, double c) { return a * b + c; }
#endif

#if defined(__CUDA_ARCH__)
__device__ __forceinline__ float exp(float x) { return ::expf(x); }
__device__ __forceinline__ double exp(double x) { return ::exp(x); }
__device__ __forceinline__ float tanh(float x) { return ::tanhf(x); }
__device__ __forceinline__ double tanh(double x) { return ::tanh(x); }
#else

namespace detail {

// Adding 1.5 * 2^23 (2^52 for double) rounds |v| < 2^22 to the nearest integer, which then sits in
// the low bits of the sum: a vectorisable round-to-int without floor() (which needs
// -fno-trapping-math to vectorise).
RTRL_HD std::int32_t round_to_int(float v, float* rounded) {
  constexpr float shifter = 12582912.0f;
  const float t = v + shifter;
  *rounded = t - shifter;
  return __builtin_bit_cast(std::int32_t, t) - __builtin_bit_cast(std::int32_t, shifter);
}

RTRL_HD std::int64_t round_to_int(double v, double* rounded) {
  constexpr double shifter = 6755399441055744.0;
  const double t = v + shifter;
  *rounded = t - shifter;
  return __builtin_bit_cast(std::int64_t, t) - __builtin_bit_cast(std::int64_t, shifter);
}

// The shift is unsigned: a NaN argument to exp gives a garbage k (the result is then discarded), and
// a signed shift out of range would be undefined behaviour.
RTRL_HD float pow2i(std::int32_t k) {  // 2^k for k in [-126, 127]
  return __builtin_bit_cast(float, static_cast<std::uint32_t>(k + 127) << 23);
}

RTRL_HD double pow2i(std::int64_t k) {  // 2^k for k in [-1022, 1023]
  return __builtin_bit_cast(double, static_cast<std::uint64_t>(k + 1023) << 52);
}

}  // namespace detail

RTRL_HD float exp(float x) {
  const float xc = select_bits(x > 88.72283f, 88.72283f, select_bits(x < -103.97f, -103.97f, x));
  float k;
  const std::int32_t ki = detail::round_to_int(xc * 1.44269504088896341f, &k);
  const float r = fma(k, 2.12194440e-4f, fma(-k, 0.693359375f, xc));
  float p = 1.9875691500e-4f;
  p = fma(p, r, 1.3981999507e-3f);
  p = fma(p, r, 8.3334519073e-3f);
  p = fma(p, r, 4.1665795894e-2f);
  p = fma(p, r, 1.6666665459e-1f);
  p = fma(p, r, 5.0000001201e-1f);
  const std::int32_t half = ki >> 1;  // 2^k in two factors: both stay normal down to k = -150
  const float y = (fma(p * r, r, r) + 1.0f) * detail::pow2i(half) * detail::pow2i(ki - half);
  return select_bits(x != x, x,
                     select_bits(x > 88.72283f, HUGE_VALF, select_bits(x < -103.97f, 0.0f, y)));
}

RTRL_HD double exp(double x) {
  const double xc =
      select_bits(x > 709.782712893384, 709.782712893384, select_bits(x < -745.1332, -745.1332, x));
  double k;
  const std::int64_t ki = detail::round_to_int(xc * 1.4426950408889634073599, &k);
  const double r = fma(-k, 1.42860682030941723212e-6, fma(-k, 6.93145751953125e-1, xc));
  const double rr = r * r;
  const double px = r * fma(fma(1.26177193074810590878e-4, rr, 3.02994407707441961300e-2), rr,
                            9.99999999999999999910e-1);
  const double qx = fma(fma(fma(3.00198505138664455042e-6, rr, 2.52448340349684104192e-3), rr,
                            2.27265548208155028766e-1), rr, 2.00000000000000000009e0);
  const std::int64_t half = ki >> 1;
  const double y = fma(2.0, px / (qx - px), 1.0) * detail::pow2i(half) * detail::pow2i(ki - half);
  return select_bits(x != x, x, select_bits(x > 709.782712893384, HUGE_VAL,
                                            select_bits(x < -745.1332, 0.0, y)));
}

RTRL_HD float tanh(float x) {
  const float a = select_bits(x < 0.0f, -x, x);
  const float z = x * x;  // |x| < 0.625: odd minimax polynomial
  float p = fma(-5.70498872745e-3f, z, 2.06390887954e-2f);
  p = fma(p, z, -5.37397155531e-2f);
  p = fma(p, z, 1.33314422036e-1f);
  p = fma(p, z, -3.33332819422e-1f);
  const float small = fma(p * z, x, x);
  const float large = 1.0f - 2.0f / (exp(2.0f * a) + 1.0f);
  const float y = select_bits(a < 0.625f, small, select_bits(x < 0.0f, -large, large));
  return select_bits(x != x, x, y);
}

RTRL_HD double tanh(double x) {
  const double a = select_bits(x < 0.0, -x, x);
  const double s = x * x;  // |x| < 0.625: Pade approximation
  const double p = fma(fma(-9.64399179425052238628e-1, s, -9.92877231001918586564e1), s,
                       -1.61468768441708447952e3);
  const double q = fma(fma(s + 1.12811678491632931402e2, s, 2.23548839060100448583e3), s,
                       4.84406305325125486048e3);
  const double small = fma(x * s, p / q, x);
  const double large = 1.0 - 2.0 / (exp(2.0 * a) + 1.0);
  const double y = select_bits(a < 0.625, small, select_bits(x < 0.0, -large, large));
  return select_bits(x != x, x, y);
}

#endif

template <class T>
RTRL_HD T sigmoid(T x) {
  return T(1) / (T(1) + exp(-x));
}

}  // namespace math
}  // namespace rtrl
