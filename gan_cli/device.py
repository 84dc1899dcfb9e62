"""Device selection and mixed precision, shared by training and sampling."""

import contextlib
import re

import torch

from gan_cli.errors import GanError

PRECISIONS = ("fp32", "bf16", "fp16")


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


def autocast(device: torch.device, precision: str):
    """A context manager running the forward passes in `precision` (fp32: no autocast)."""
    if precision == "fp32":
        return contextlib.nullcontext()
    if precision == "fp16" and device.type != "cuda":
        raise GanError("train.precision=fp16 needs a CUDA device; on the CPU use bf16 or fp32")
    dtype = torch.bfloat16 if precision == "bf16" else torch.float16
    return torch.autocast(device.type, dtype=dtype)
