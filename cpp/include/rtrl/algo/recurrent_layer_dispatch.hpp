// Calls f(Cell{}) with the cell type named by a runtime CellKind.
#pragma once

#include "rtrl/cells/elstm.hpp"
#include "rtrl/cells/gru.hpp"
#include "rtrl/cells/lstm.hpp"
#include "rtrl/cells/rnn.hpp"
#include "rtrl/recurrent_layer.hpp"

namespace rtrl {

template <class F>
void with_cell(CellKind kind, F&& f) {
  switch (kind) {
    case CellKind::rnn:
      f(RnnCell{});
      return;
    case CellKind::lstm:
      f(LstmCell{});
      return;
    case CellKind::gru:
      f(GruCell{});
      return;
    case CellKind::elstm:
      f(ElstmCell{});
      return;
  }
  throw std::invalid_argument("cell: unknown cell kind");
}

}  // namespace rtrl
