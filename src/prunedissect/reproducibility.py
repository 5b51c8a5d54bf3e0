"""Byte-identical CPU results on any x86-64 host: pinning the kernels numpy and torch dispatch to.

torch picks its CPU kernels at run time from the processor's vector instruction set: ATen's
own vectorised kernels (``ATEN_CPU_CAPABILITY``), oneDNN's convolutions (``ONEDNN_MAX_CPU_ISA``)
and MKL's BLAS (``MKL_CBWR``). numpy does the same for its SIMD loops (sin, cos, exp... in
float64 use AVX-512 code where present). Kernels for different instruction sets round
differently, so the same training run gives other weights on an AVX-512 host than on an AVX2
one, and a different number of threads splits reductions differently. :func:`cpu_environment`
returns the environment that pins all of them to AVX2 (x86-64-v3, every x86-64 server since
about 2015) and a fixed thread count; it must be in place before numpy or torch is imported,
so the workflow exports it once when the Snakefile is parsed (``workflow/rules/common.smk``)
and every job inherits it, whatever the caller's environment held.

This module imports neither numpy nor torch. The pin does not reach CUDA: on a GPU, cuDNN and
cuBLAS choose algorithms per device and driver; see README.md, "Reproducibility".
"""

from __future__ import annotations

import os
import sys
import warnings

#: Environment variable telling a job how many threads the pin fixed (read by :func:`job_threads`).
THREADS_VARIABLE = "PRUNEDISSECT_CPU_THREADS"

#: Vector instruction sets disabled in numpy: everything above x86-64-v3 (AVX2, FMA3).
NUMPY_DISABLED = "X86_V4 AVX512_ICL AVX512_SPR"


def cpu_environment(*, pin_kernels: bool, threads: int) -> dict[str, str]:
    """The environment variables that pin CPU kernels and threads (empty when not pinning).

    ``threads`` is the intra-op thread count of every job: results depend on it, so it is a
    config value, never the host's core count or the scheduler's (possibly scaled-down) grant.
    """
    if threads < 1:
        raise ValueError(f"cpu.threads must be >= 1, got {threads}")
    if not pin_kernels:
        return {}
    count = str(threads)
    return {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "DNNL_MAX_CPU_ISA": "AVX2",
        "MKL_CBWR": "AVX2,STRICT",
        "NPY_DISABLE_CPU_FEATURES": NUMPY_DISABLED,
        "OMP_NUM_THREADS": count,
        "MKL_NUM_THREADS": count,
        THREADS_VARIABLE: count,
    }


def pin_cpu(*, threads: int = 1) -> None:
    """Pin this process (for notebooks and scripts): call before importing numpy or torch.

    Warns when numpy or torch is already imported, since the pin then cannot take effect.
    """
    late = [name for name in ("numpy", "torch") if name in sys.modules]
    if late:
        warnings.warn(
            f"pin_cpu() called after importing {', '.join(late)}: their kernels are already "
            "chosen; call it before any other import to get pinned results",
            RuntimeWarning,
            stacklevel=2,
        )
    os.environ.update(cpu_environment(pin_kernels=True, threads=threads))


def job_threads(granted: int) -> int:
    """Threads a job's torch should use: the pinned count, else what the scheduler ``granted``."""
    pinned = os.environ.get(THREADS_VARIABLE)
    return int(pinned) if pinned else max(1, int(granted))


def kernel_report() -> str:
    """One line naming the kernels in use (for job logs): torch's CPU capability and threads."""
    import torch  # the pin must be in place before torch is imported

    return (
        f"torch CPU capability {torch.backends.cpu.get_cpu_capability()}, "
        f"{torch.get_num_threads()} thread(s), "
        f"kernels {'pinned' if os.environ.get(THREADS_VARIABLE) else 'native (not pinned)'}"
    )
