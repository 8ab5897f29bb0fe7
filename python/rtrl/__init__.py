"""rtrl: exact online learning for recurrent networks.

Real-Time Recurrent Learning (Williams & Zipser 1989) with a native core on the CPU (OpenMP +
OpenBLAS) and on NVIDIA GPUs (CUDA + cuBLAS). See ``rtrl.RTRL`` to start.
"""

from . import _backend

_backend._load_cpu_module()  # before anything else can load its OpenBLAS with a thread pool

from . import memory, nn, optim  # noqa: E402
from ._info import cuda_available, info  # noqa: E402
from .checkpoint import CheckpointError, load  # noqa: E402
from .learners import BPTT, RTRL, NonFiniteError, RunResult  # noqa: E402
from .models import FullyRecurrent, RecurrentNet  # noqa: E402
from .traces import RFLO, EProp, SnAp  # noqa: E402
from .uoro import KFRTRL, UORO  # noqa: E402

__version__ = "0.1.0"

__all__ = ["BPTT", "CheckpointError", "EProp", "FullyRecurrent", "KFRTRL", "NonFiniteError", "RFLO", "RTRL",
           "RunResult", "SnAp", "UORO", "cuda_available", "info", "load", "memory", "nn",
           "optim", "RecurrentNet", "__version__"]
