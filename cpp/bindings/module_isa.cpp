// rtrl._rtrl_isa: which instruction sets this CPU (and its operating system) runs. Built for the
// baseline so that it loads anywhere; rtrl reads it to choose among its CPU modules (DESIGN §2).
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

namespace py = pybind11;

// The x86-64 micro-architecture levels (the psABI's x86-64-v2/v3/v4) this CPU reaches, lowest first.
// __builtin_cpu_supports also checks that the OS saves the AVX and AVX-512 registers (XGETBV).
static std::vector<std::string> x86_levels() {
  std::vector<std::string> levels;
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
  __builtin_cpu_init();  // GCC 12 knows the levels by name, exactly as -march defines them
  const bool v2 = __builtin_cpu_supports("x86-64-v2");
  const bool v3 = __builtin_cpu_supports("x86-64-v3");
  const bool v4 = __builtin_cpu_supports("x86-64-v4");
#elif defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  const bool v2 = __builtin_cpu_supports("sse3") && __builtin_cpu_supports("ssse3") &&
                  __builtin_cpu_supports("sse4.1") && __builtin_cpu_supports("sse4.2") &&
                  __builtin_cpu_supports("popcnt");
  const bool v3 = v2 && __builtin_cpu_supports("avx") && __builtin_cpu_supports("avx2") &&
                  __builtin_cpu_supports("bmi") && __builtin_cpu_supports("bmi2") &&
                  __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c") &&
                  __builtin_cpu_supports("movbe");
  const bool v4 = v3 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                  __builtin_cpu_supports("avx512cd") && __builtin_cpu_supports("avx512dq") &&
                  __builtin_cpu_supports("avx512vl");
#else
  const bool v2 = false, v3 = false, v4 = false;
#endif
  if (v2) levels.push_back("x86-64-v2");
  if (v3) levels.push_back("x86-64-v3");
  if (v4) levels.push_back("x86-64-v4");
  return levels;
}

PYBIND11_MODULE(_rtrl_isa, m) {
  m.doc() = "rtrl: the instruction sets this CPU runs";
  m.def("x86_levels", &x86_levels,
        "The x86-64 levels ('x86-64-v2', 'x86-64-v3', 'x86-64-v4') this CPU and OS run, lowest first; "
        "empty elsewhere.");
}
