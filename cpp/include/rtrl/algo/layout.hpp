// What an online learner holds and needs, in elements of its dtype: each model and algorithm
// declares its part next to the buffers it allocates (static declare(dims, layout)), and
// rtrl.memory.estimate reads the sum through the bindings, so that no layout is written twice.
#pragma once

#include <vector>

#include "rtrl/common.hpp"

namespace rtrl {

// One ctx.for_product_blocks call per step: an [rows, depth] matrix times `cols` columns. Its scratch
// is the backend's (the CPU context's plan, or CUDA's block of columns).
struct ProductShape {
  index_t rows, depth, cols;
};

// The algorithm an online call runs: exact RTRL, one with unit-diagonal traces (SnAp-1; e-prop,
// of which RFLO is the leaky rnn's case), UORO or KF-RTRL.
enum class OnlineAlgorithm { exact, snap1, eprop, uoro, kf };

struct OnlineLayout {
  index_t state = 0;          // the recurrent state, kept between calls
  index_t sensitivities = 0;  // the algorithm's state, kept between calls
  std::vector<index_t> layer_sensitivities;  // its part per layer of a stack
  index_t workspace = 0;      // allocated per call, besides the products' scratch
  index_t carried = 0;        // what carries from step to step (check_window.hpp) besides the
                              // algorithm's sensitivities: the model's part, and an algorithm's
                              // workspace that carries (UORO's row norms)
  std::vector<ProductShape> products;
};

}  // namespace rtrl
