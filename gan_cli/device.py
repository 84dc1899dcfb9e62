"""Device selection and mixed precision, shared by training and sampling."""

import contextlib
import ctypes
import platform
import re

import torch

from gan_cli.errors import GanError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")

# mallopt(3) parameters (glibc's malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3


def select_device(name: str) -> torch.device:
    """auto -> the first CUDA device when there is one, else the CPU; cpu, cuda and cuda:N as given."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not re.fullmatch(r"cpu|cuda(:\d+)?", name):
        raise GanError(f"device={name!r} is not a device; use auto, cpu, cuda or cuda:N")
    device = torch.device(name)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GanError(f"device={name} but CUDA is not available here; use device=auto or device=cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GanError(f"device={name} but only {torch.cuda.device_count()} CUDA device(s) exist")
    return device


def resolve_precision(precision: str, device: torch.device) -> str:
    """`precision` itself, or for auto: bf16 where `device` computes in bfloat16 natively, else fp32.

    Natively means a CUDA device with bf16 arithmetic (Ampere and newer) or a CPU with AVX-512 BF16
    or AMX instructions: there bf16 convolutions run at about twice the fp32 rate. Elsewhere bf16
    is emulated and slower than fp32.
    """
    if precision != "auto":
        return precision
    return "bf16" if native_bf16(device) else "fp32"


def native_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    # torch.cpu's instruction-set probes (private, hence the fallback: no probe, no bf16).
    probes = (getattr(torch.cpu, name, None) for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"))
    return device.type == "cpu" and any(probe is not None and probe() for probe in probes)


def autocast(device: torch.device, precision: str):
    """A context manager running the forward passes in `precision` (resolved: fp32, bf16 or fp16;
    fp32: no autocast)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise GanError("train.precision=fp16 needs a CUDA device; on the CPU use bf16 or fp32")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)


def keep_freed_host_memory() -> None:
    """Have glibc's malloc keep freed memory for the next allocations instead of giving it back to
    the kernel (what jemalloc or tcmalloc would do, without a preload). No effect off glibc.

    Why: a CPU training step allocates and frees the same activation tensors (0.1-30 MB) every step.
    By default glibc serves large allocations with fresh mmaps and trims the heap once they are
    freed, so the kernel maps and zeroes those pages again in every step: about 6,000 page faults
    per fp32 step of the 28x28 MNIST DCGAN. Allocations up to 32 MB (glibc's upper bound for this
    threshold) now come from the heap, and the heap is not trimmed below 1 GiB of free memory: the
    process reaches its peak again in every step anyway.
    """
    if platform.libc_ver()[0] != "glibc":
        return
    libc = ctypes.CDLL(None)  # the C library this interpreter runs on
    libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
    libc.mallopt(M_TRIM_THRESHOLD, 1 << 30)
