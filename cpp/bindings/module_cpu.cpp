// A CPU extension module, rtrl._rtrl_cpu_<isa>: built once per instruction set (RTRL_CPU_ISAS),
// the one rtrl loads chosen at import time (python/rtrl/_isa.py).
#include <cblas.h>
#include <omp.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <utility>

#include "bind_fully_recurrent.hpp"
#include "bind_cell_net.hpp"
#include "bind_cell_step.hpp"
#include "bind_layers.hpp"
#include "bind_reduce.hpp"
#include "rtrl/algo/update_bounds.hpp"
#include "rtrl/gemm_layout.hpp"
#include "rtrl/math.hpp"
#include "src/cpu_context.hpp"

namespace py = pybind11;
using namespace rtrl;

static const char* simd_level() {
#if defined(__AVX512F__)
  return "AVX-512";
#elif defined(__AVX2__)
  return "AVX2";
#elif defined(__AVX__)
  return "AVX";
#elif defined(__SSE4_2__)
  return "SSE4.2";
#elif defined(__SSE2__)
  return "SSE2";  // the x86-64 baseline
#elif defined(__ARM_NEON)
  return "NEON";
#else
  return "scalar";
#endif
}

// A 2-d row-major matrix of T with unit column stride and any row stride >= its columns (a view
// into a wider array): its data and leading dimension, for the GEMM mapping test below.
template <class T>
static std::pair<T*, index_t> strided_matrix(const py::array& a, const char* name, bool writable) {
  RTRL_CHECK(a.ndim() == 2, std::string(name) + ": expected a 2-d array");
  if (a.dtype().kind() != 'f' || a.itemsize() != py::ssize_t(sizeof(T)))
    throw py::type_error(std::string(name) + ": expected dtype " + dtype_name<T>());
  const index_t rows = a.shape(0), cols = a.shape(1);
  const index_t s0 = a.strides(0), s1 = a.strides(1);
  RTRL_CHECK(cols <= 1 || s1 == index_t(sizeof(T)), std::string(name) + ": expected unit column stride");
  RTRL_CHECK(rows <= 1 || (s0 > 0 && s0 % index_t(sizeof(T)) == 0 && s0 / index_t(sizeof(T)) >= cols),
             std::string(name) + ": expected a row stride of at least its columns");
  RTRL_CHECK(!writable || a.writeable(), std::string(name) + ": expected a writeable array");
  const index_t ld = rows > 1 ? s0 / index_t(sizeof(T)) : std::max<index_t>(cols, 1);
  return {static_cast<T*>(const_cast<void*>(a.data())), ld};
}

// Row-major C = alpha op(A) op(B) + beta C computed by a column-major BLAS call through
// row_major_as_col_major: the mapping the CUDA backend uses for cuBLAS, checked here on the CPU.
// A, B and C may be views with leading dimensions wider than their columns.
template <class T>
static void gemm_via_col_major(bool trans_a, bool trans_b, const py::array& A, const py::array& B,
                               const py::array& C, T alpha, T beta) {
  const auto [a, lda] = strided_matrix<T>(A, "A", false);
  const auto [b, ldb] = strided_matrix<T>(B, "B", false);
  const auto [c, ldc] = strided_matrix<T>(C, "C", true);
  const index_t M = C.shape(0), N = C.shape(1), K = trans_a ? A.shape(0) : A.shape(1);
  RTRL_CHECK((trans_a ? A.shape(1) : A.shape(0)) == M, "A: rows of op(A) must equal rows of C");
  RTRL_CHECK((trans_b ? B.shape(1) : B.shape(0)) == K, "B: rows of op(B) must equal columns of op(A)");
  RTRL_CHECK((trans_b ? B.shape(0) : B.shape(1)) == N, "B: columns of op(B) must equal columns of C");
  const auto cm = row_major_as_col_major<T>(trans_a, trans_b, M, N, K, a, lda, b, ldb, ldc);
  auto op = [](bool t) { return t ? CblasTrans : CblasNoTrans; };
  if constexpr (sizeof(T) == 4)
    scipy_cblas_sgemm(CblasColMajor, op(cm.trans_a), op(cm.trans_b), blasint(cm.m), blasint(cm.n),
                      blasint(cm.k), alpha, cm.a, blasint(cm.lda), cm.b, blasint(cm.ldb), beta, c,
                      blasint(cm.ldc));
  else
    scipy_cblas_dgemm(CblasColMajor, op(cm.trans_a), op(cm.trans_b), blasint(cm.m), blasint(cm.n),
                      blasint(cm.k), alpha, cm.a, blasint(cm.lda), cm.b, blasint(cm.ldb), beta, c,
                      blasint(cm.ldc));
}

// Seconds per call of one row-major sgemm of the given shape on `threads` OpenBLAS threads
// (the reference rate the benchmarks compare against).
static double time_sgemm(index_t M, index_t N, index_t K, int repeats, int threads) {
  std::vector<float> A(size_t(M * K), 0.5f), B(size_t(K * N), 0.25f), C(size_t(M * N));
  py::gil_scoped_release release;
  scipy_openblas_set_num_threads(threads);
  cpu_gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
  const double start = omp_get_wtime();
  for (int r = 0; r < repeats; ++r)
    cpu_gemm(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
  const double elapsed = omp_get_wtime() - start;
  scipy_openblas_set_num_threads(1);
  return elapsed / repeats;
}

// y = fn(x) elementwise with the core's own exp/tanh/sigmoid (what the kernels use), for testing.
template <class T>
static py::array_t<T> elementwise(const std::string& fn, py::array_t<T, py::array::c_style> x) {
  py::array_t<T> y(x.request().shape);
  const T* in = x.data();
  T* out = y.mutable_data();
  const index_t n = index_t(x.size());
  if (fn == "exp") {
#pragma omp simd
    for (index_t i = 0; i < n; ++i) out[i] = math::exp(in[i]);
  } else if (fn == "tanh") {
#pragma omp simd
    for (index_t i = 0; i < n; ++i) out[i] = math::tanh(in[i]);
  } else if (fn == "sigmoid") {
#pragma omp simd
    for (index_t i = 0; i < n; ++i) out[i] = math::sigmoid(in[i]);
  } else {
    throw std::invalid_argument("fn: expected 'exp', 'tanh' or 'sigmoid', got '" + fn + "'");
  }
  return y;
}

PYBIND11_MODULE(RTRL_MODULE_NAME, m) {
  m.doc() = "rtrl CPU backend (OpenMP + OpenBLAS)";
  cpu_backend_init();
  FullyRecurrentBindings<CpuBackend, HostArrays>::bind(m);
  LayerBindings<CpuBackend, HostArrays>::bind(m);
  CellNetBindings<CpuBackend, HostArrays>::bind(m);
  CellStepBindings<CpuBackend>::bind(m);
  ReduceBindings<CpuBackend, HostArrays>::bind(m);

  m.def("_product_block_scratch", [](index_t M, index_t K, index_t ncols, index_t item_bytes) {
    const CpuContext ctx;
    const CpuContext::ProductPlan p = item_bytes == index_t(sizeof(float))
                                          ? ctx.product_plan<float>(M, K, ncols)
                                          : ctx.product_plan<double>(M, K, ncols);
    return index_t(p.workers) * p.slot;
  }, py::arg("M"), py::arg("K"), py::arg("ncols"), py::arg("item_bytes"),
        "Elements of the scratch CpuContext::for_product_blocks holds for this product (memory "
        "estimates).");

  m.def("info", []() {
    py::dict d;
    d["version"] = RTRL_VERSION;
    d["blas"] = std::string("OpenBLAS (scipy-openblas32) ") + scipy_openblas_get_config();
    d["blas_core"] = scipy_openblas_get_corename();
    d["threads"] = omp_get_max_threads();
    d["simd"] = simd_level();
    d["isa"] = RTRL_ISA;
    d["sanitizers"] = RTRL_SANITIZERS;
    return d;
  });
  m.def("set_num_threads", [](int threads) {
    RTRL_CHECK(threads >= 1, "threads: expected a positive integer");
    omp_set_num_threads(threads);
  });
  m.def("_gemm_via_col_major", [](bool ta, bool tb, py::array A, py::array B, py::array C, double alpha,
                                  double beta) {
    if (C.itemsize() == 4)
      gemm_via_col_major<float>(ta, tb, A, B, C, float(alpha), float(beta));
    else
      gemm_via_col_major<double>(ta, tb, A, B, C, alpha, beta);
  });
  // The CUDA module's reading of __cuda_array_interface__ and its stream and pointer rules
  // (device_arrays.hpp), for tests with fake interface objects on machines without a GPU.
  m.def("_cuda_array_interface", [](py::object obj, const std::string& name, std::uintptr_t call_stream) {
    const CudaArrayInterface a = read_cuda_array_interface(obj, name.c_str());
    py::dict d;
    d["data"] = reinterpret_cast<std::uintptr_t>(a.ref.data);
    d["shape"] = py::tuple(py::cast(a.ref.shape));
    d["kind"] = std::string(1, a.ref.kind);
    d["itemsize"] = a.ref.itemsize;
    d["c_contiguous"] = a.ref.c_contiguous;
    d["writeable"] = a.ref.writeable;
    d["stream"] = a.has_stream ? py::object(py::int_(a.stream)) : py::object(py::none());
    d["waits"] = a.has_stream && !same_stream(a.stream, call_stream);
    return d;
  }, py::arg("obj"), py::arg("name"), py::arg("call_stream"));
  m.def("_device_pointer_problem", [](const std::string& name, int memory_type, int pointer_device,
                                      int call_device) {
    RTRL_CHECK(memory_type >= 0 && memory_type <= 3, "memory_type: expected 0..3 (cudaMemoryType)");
    return device_pointer_problem(name.c_str(), MemoryKind(memory_type), pointer_device, call_device);
  }, py::arg("name"), py::arg("memory_type"), py::arg("pointer_device"), py::arg("call_device"));
  // update_stays_finite (algo/update_bounds.hpp) for T of `itemsize` bytes, for the tests.
  m.def("_update_stays_finite", [](const OptimizerConfig& opt, std::int64_t step, double state_bound,
                                   double grad_bound, int itemsize) {
    RTRL_CHECK(itemsize == 4 || itemsize == 8, "itemsize: expected 4 or 8");
    if (itemsize == 4)
      return update_stays_finite(opt, step, UpdateBounds<float>{float(state_bound), float(grad_bound)});
    return update_stays_finite(opt, step, UpdateBounds<double>{state_bound, grad_bound});
  }, py::arg("optimizer"), py::arg("step"), py::arg("state_bound"), py::arg("grad_bound"), py::arg("itemsize"));
  m.def("_elementwise", &elementwise<float>, py::arg("fn"), py::arg("x").noconvert());
  m.def("_elementwise", &elementwise<double>, py::arg("fn"), py::arg("x").noconvert());
  m.def("_time_sgemm", &time_sgemm, py::arg("M"), py::arg("N"), py::arg("K"),
        py::arg("repeats"), py::arg("threads"));
}
