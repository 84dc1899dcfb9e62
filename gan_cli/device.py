"""Device selection and mixed precision, shared by training and sampling."""

import contextlib
import re

import torch

from gan_cli.errors import GanError

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


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
