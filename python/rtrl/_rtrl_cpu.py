"""rtrl's CPU module: the build of the CPU backend for the best instruction set this CPU runs, or the
one ``RTRL_CPU_ISA`` names (``rtrl._isa``). Importing this module gives that extension module itself."""

import sys

from ._isa import load_cpu_module

sys.modules[__name__] = load_cpu_module()
