// Every online learner's layout (algo/layout.hpp) by algorithm, on a backend's context: the one
// entry the backends export for rtrl.memory.
#pragma once

#include <stdexcept>

#include "rtrl/algo/cell_kf_rtrl.hpp"
#include "rtrl/algo/cell_rtrl.hpp"
#include "rtrl/algo/cell_traces.hpp"
#include "rtrl/algo/cell_uoro.hpp"
#include "rtrl/algo/fully_recurrent_kf_rtrl.hpp"
#include "rtrl/algo/fully_recurrent_rtrl.hpp"
#include "rtrl/algo/fully_recurrent_traces.hpp"
#include "rtrl/algo/fully_recurrent_uoro.hpp"
#include "rtrl/algo/layout.hpp"
#include "rtrl/algo/recurrent_layer_dispatch.hpp"

namespace rtrl {

template <class Ctx>
OnlineLayout fully_recurrent_layout(OnlineAlgorithm a, const FullyRecurrentDims& d, bool update,
                                    index_t state_rows) {
  using Model = FullyRecurrentModel<Ctx, float>;
  const index_t np = d.n_weights();
  switch (a) {
    case OnlineAlgorithm::exact:
      return online_layout<Model, FullyRecurrentExactRtrl<Ctx, float>>(d, np, update, state_rows);
    case OnlineAlgorithm::snap1:
    case OnlineAlgorithm::eprop:
      return online_layout<Model, FullyRecurrentTraces<Ctx, float>>(d, np, update, state_rows);
    case OnlineAlgorithm::uoro:
      return online_layout<Model, FullyRecurrentUoro<Ctx, float>>(d, np, update, state_rows);
    case OnlineAlgorithm::kf:
      return online_layout<Model, FullyRecurrentKfRtrl<Ctx, float>>(d, np, update, state_rows);
  }
  throw std::invalid_argument("algorithm: unknown online algorithm");
}

// KF-RTRL has the rnn and lstm cells only (the caller checks).
template <class Ctx>
OnlineLayout cell_net_layout(OnlineAlgorithm a, const CellNetDims& d, bool update, index_t state_rows) {
  const index_t np = d.n_params();
  if (a == OnlineAlgorithm::kf)
    return d.cell == CellKind::lstm
               ? online_layout<CellStackModel<LstmCell, Ctx, float>, CellStackKfRtrl<LstmCell, Ctx, float>>(
                     d, np, update, state_rows)
               : online_layout<CellStackModel<RnnCell, Ctx, float>, CellStackKfRtrl<RnnCell, Ctx, float>>(
                     d, np, update, state_rows);
  OnlineLayout l;
  with_cell(d.cell, [&](auto cell) {
    using Cell = decltype(cell);
    using Model = CellStackModel<Cell, Ctx, float>;
    l = a == OnlineAlgorithm::exact
            ? online_layout<Model, CellStackExactRtrl<Cell, Ctx, float>>(d, np, update, state_rows)
        : a == OnlineAlgorithm::uoro
            ? online_layout<Model, CellStackUoro<Cell, Ctx, float>>(d, np, update, state_rows)
            : online_layout<Model, CellStackTraces<Cell, Ctx, float>>(d, np, update, state_rows);
  });
  return l;
}

}  // namespace rtrl
