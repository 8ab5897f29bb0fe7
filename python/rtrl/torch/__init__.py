"""torch.nn-compatible recurrent modules whose forward and backward run on rtrl's native kernels.

``rtrl.torch.RNN``, ``LSTM``, ``GRU`` and the cells ``RNNCell``, ``LSTMCell``, ``GRUCell`` are
``torch.nn.Module``s with torch.nn's constructor and call signatures, parameters (``torch.nn.Parameter``,
named and initialised as torch.nn's, so ``load_state_dict`` of a torch.nn module's state dict works
unchanged) and equations; autograd reaches them through ``torch.autograd.Function``, so they train with
``torch.optim``. CPU tensors run on rtrl's CPU backend, CUDA tensors on its CUDA backend (on the
tensor's device and torch's current stream; needs rtrl's CUDA module and CuPy).

Importing ``rtrl`` does not import torch; this subpackage needs it (``pip install torch``).
"""

try:
    import torch as _torch  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised in an environment without torch
    raise ImportError(
        "rtrl.torch needs PyTorch, which is not installed (pip install torch); rtrl itself and rtrl.nn "
        "(NumPy in and out) work without it"
    ) from exc

from .cells import GRUCell, LSTMCell, RNNCell  # noqa: E402
from .layers import GRU, LSTM, RNN  # noqa: E402

__all__ = ["GRU", "GRUCell", "LSTM", "LSTMCell", "RNN", "RNNCell"]
