"""rtrl: exact online learning for recurrent networks.

Real-Time Recurrent Learning (Williams & Zipser 1989) with a native core on the CPU (OpenMP +
OpenBLAS) and on NVIDIA GPUs (CUDA + cuBLAS). See ``rtrl.RTRL`` to start.
"""

from . import nn, optim
from ._info import cuda_available, info
from .checkpoint import load
from .learners import BPTT, RTRL, RunResult
from .models import FullyRecurrent, RecurrentNet

__version__ = "0.1.0"

__all__ = ["BPTT", "FullyRecurrent", "RTRL", "RunResult", "cuda_available", "info", "load", "nn", "optim", "RecurrentNet",
           "__version__"]
