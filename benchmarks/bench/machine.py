"""The machine: what it is (CPU, memory, library versions, device), its name, its ceilings."""

from __future__ import annotations

import contextlib
import os
import platform
import re
import socket
from dataclasses import dataclass, field
from pathlib import Path

import matplotlib
import numpy as np
import torch
import torchnmf

from pytest_dreamer_audit import __version__ as package_version

from .codec import OMIT_NONE
from .timing import Clock

_SIMD_FLAGS = ("avx512f", "avx2", "fma", "neon", "asimd")


@dataclass(frozen=True, kw_only=True)
class Machine:
    """Where a run ran, read at its start (the field order is the results file's)."""

    host: str
    cpu_model: str
    cpu_family_model: str
    """``family/model`` from /proc/cpuinfo, ``?`` where it is not there."""
    cpu_simd: tuple[str, ...]
    cpu_cache: str | None
    logical_cpus: int | None
    usable_cpus: int | None
    """CPUs this process may run on (its affinity mask)."""
    memory_gib: float | None
    load_average_at_start: tuple[float, ...]
    os: str
    python: str
    torch: str
    torch_threads: int
    torch_interop_threads: int
    torch_blas: str
    numpy: str
    matplotlib: str
    torchnmf: str | None
    scikit_learn: str | None
    """None where scikit-learn is not installed."""
    pytest_dreamer_audit: str
    device: str
    gpu: str | None
    """The GPU's name with ``--device cuda``, else None."""
    cuda: str | None
    load_average_at_end: tuple[float, ...] | None = field(default=None, metadata=OMIT_NONE)
    """Read when the run ends."""


def _cpuinfo() -> dict[str, str]:
    info: dict[str, str] = {}
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            key = key.strip()
            if key and key not in info:
                info[key] = value.strip()
    return info


def _memory_gib() -> float | None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    return None


def _version(module: str) -> str | None:
    try:
        version: str = __import__(module).__version__
    except ImportError:
        return None
    return version


def describe_machine(device: torch.device) -> Machine:
    cpu = _cpuinfo()
    flags = set(cpu.get("flags", "").split())
    return Machine(
        host=socket.gethostname(),
        cpu_model=cpu.get("model name") or platform.processor() or platform.machine(),
        cpu_family_model=f"{cpu.get('cpu family', '?')}/{cpu.get('model', '?')}",
        cpu_simd=tuple(f for f in _SIMD_FLAGS if f in flags),
        cpu_cache=cpu.get("cache size"),
        logical_cpus=os.cpu_count(),
        usable_cpus=len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        memory_gib=_memory_gib(),
        load_average_at_start=os.getloadavg(),
        os=platform.platform(),
        python=platform.python_version(),
        torch=torch.__version__,
        torch_threads=torch.get_num_threads(),
        torch_interop_threads=torch.get_num_interop_threads(),
        torch_blas="mkl" if torch.backends.mkl.is_available() else "other",
        numpy=np.__version__,
        matplotlib=matplotlib.__version__,
        torchnmf=getattr(torchnmf, "__version__", None),
        scikit_learn=_version("sklearn"),
        pytest_dreamer_audit=package_version,
        device=str(device),
        gpu=torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        cuda=torch.version.cuda if device.type == "cuda" else None,
    )


def machine_name(machine: Machine, threads: int) -> str:
    """The results file's default name: the GPU, or the CPU model, usable CPUs and threads."""
    if machine.gpu:
        text = f"{machine.gpu}-cuda"
    else:
        text = f"{machine.cpu_model}-{machine.usable_cpus}cpu-{threads}thread-cpu"
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


@dataclass(frozen=True)
class Bandwidth:
    """The streaming ceiling: one large ``Tensor.copy_`` on the device."""

    buffer_mib: int
    best_s: float
    bytes_per_s: float
    """Bytes read + written per second."""


@dataclass(frozen=True)
class GemmRate:
    """The compute ceiling: one square float32 matmul on the device."""

    side: int
    best_s: float
    flop_per_s: float


def copy_bandwidth(clock: Clock, mib: int, repeats: int = 5) -> Bandwidth:
    """Bytes read + written per second by one ``mib``-MiB ``Tensor.copy_``."""
    src = torch.ones(mib * 2**20 // 4, device=clock.device)
    dst = torch.empty_like(src)
    timing, _ = clock.best_of(repeats, lambda: dst.copy_(src))
    moved = 2 * src.numel() * 4
    return Bandwidth(mib, timing.best_s, moved / timing.best_s)


def gemm_rate(clock: Clock, side: int, repeats: int = 3) -> GemmRate:
    """float32 FLOP/s of one ``side`` x ``side`` matmul."""
    a = torch.rand(side, side, device=clock.device)
    b = torch.rand(side, side, device=clock.device)
    timing, _ = clock.best_of(repeats, lambda: a @ b)
    return GemmRate(side, timing.best_s, 2 * side**3 / timing.best_s)


def describe_here(threads: int) -> str:
    """One line naming this machine for a side script's table: CPU model, usable CPUs, memory,
    load at start and the torch threads."""
    import torch

    m = describe_machine(torch.device("cpu"))
    memory = f", {m.memory_gib:.0f} GiB" if m.memory_gib else ""
    load = ", ".join(f"{value:.2f}" for value in m.load_average_at_start)
    return (
        f"{m.cpu_model}, {m.usable_cpus} usable CPUs{memory}, load {load} at start, "
        f"{threads} torch thread(s), torch {torch.__version__}"
    )


def publish(lines: list[str], out: Path | None) -> None:
    """Print a side script's markdown table and, with ``out``, write it there too."""
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if out is not None:
        out.write_text(text)
