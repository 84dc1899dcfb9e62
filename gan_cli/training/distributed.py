"""Data-parallel training (PyTorch DDP) in the processes that torchrun, or a SLURM job's tasks, start.

Every process runs the same `gan-train` command and the same loop. With W processes (WORLD_SIZE > 1):

- Each process drives one device, cuda:LOCAL_RANK or the CPU, and joins one process group: NCCL
  carries CUDA tensors (gradients), gloo CPU tensors (the loop's small agreements below).
- The global batch stays `train.batch_size`. Every process draws the same global batch from the data
  source and the same global latent draw from random streams that are identical in all processes,
  and keeps its own 1/W share of the rows. A step is the single-process algorithm over the global
  batch split W ways: DDP averages the shares' gradients, which is the gradient of the global mean loss.
- G and D are wrapped separately in DistributedDataParallel (DataParallelModule): gradients are
  synchronised in the backward passes that update a network, never in passes that only use it.
- Batch norm, which sees two forward passes per D step (real, then fake): on CUDA SyncBatchNorm, so
  statistics are those of the global batch as in one process and the running statistics are the same
  in every process; on the CPU, where SyncBatchNorm does not run, each process normalises its own
  share. Buffers are never broadcast (broadcast_buffers=False): broadcasting rewrites them in place
  between D's two forward passes, which breaks its backward pass, and with SyncBatchNorm they already agree.
- Only rank 0 writes logs, grids, evaluations and checkpoints; every process loads the same checkpoint
  to resume (the resumed step is checked to agree). The NaN guard's finiteness flags and stop signals
  are agreed, so all processes skip the same updates and stop at the same step.

With WORLD_SIZE unset or 1 nothing here does anything: no wrapper, no collective.
"""

import inspect
import logging
import os
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from gan_cli.device import select_device
from gan_cli.errors import GanError

log = logging.getLogger(__name__)

# The start time of a torchrun's rank 0, shared with every process before Hydra names the run
# directory (configs/train.yaml: the `gan_now` resolver), so that all processes write into one folder.
START_TIME_VARIABLE = "GAN_CLI_START_TIME"
# DDP's option not to broadcast buffers before each forward pass (renamed in recent PyTorch releases).
NO_BUFFER_SYNC = (
    {"forward_sync_buffers": False}
    if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
    else {"broadcast_buffers": False}
)


def launched_processes() -> int:
    """How many processes the environment says run this command: torchrun's WORLD_SIZE, or the tasks
    of a submitit job (SLURM or local), whose torch.distributed variables are then exported."""
    if "WORLD_SIZE" not in os.environ and os.environ.get("SUBMITIT_EXECUTOR"):
        import submitit  # installed with the slurm extra, which is what starts such jobs

        if submitit.JobEnvironment().num_tasks > 1:
            # RANK, LOCAL_RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT from the job's tasks; every task
            # keeps seeing all GPUs of its node and picks cuda:LOCAL_RANK itself.
            submitit.helpers.TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return int(os.environ.get("WORLD_SIZE", "1"))


@contextmanager
def process_group(agree_start_time: bool = False):
    """Within this block, join the process group the environment describes (nothing for one process,
    or when already joined). `agree_start_time`: publish rank 0's clock as the command's start time."""
    if dist.is_initialized() or launched_processes() <= 1:
        yield
        return
    dist.init_process_group("cpu:gloo,cuda:nccl" if torch.cuda.is_available() else "gloo")
    try:
        if agree_start_time:
            started = torch.tensor([time.time()], dtype=torch.float64)
            dist.broadcast(started, src=0)
            os.environ[START_TIME_VARIABLE] = repr(started.item())
        yield
    finally:
        dist.destroy_process_group()


def per_process_batch(global_batch: int, processes: int) -> int:
    """Each process's share of a global batch; the batch must split evenly."""
    share, rest = divmod(global_batch, processes)
    if rest or not share:
        raise GanError(
            f"train.batch_size={global_batch} does not split evenly over the {processes} processes of this "
            f"run (each takes an equal share of every batch); use a multiple of {processes}"
        )
    return share


@dataclass(frozen=True)
class Parallel:
    """This process's place among the processes training one model: rank 0 of 1 when alone."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """The process that writes files and logs."""
        return self.rank == 0

    def device(self, name: str) -> torch.device:
        """select_device(name); under DDP a CUDA choice means this process's GPU, cuda:LOCAL_RANK."""
        device = select_device(name)
        if not self.distributed or device.type != "cuda":
            return device
        if device.index is not None:
            raise GanError(
                f"device={name}: each process of a distributed run uses its own GPU, cuda:LOCAL_RANK; "
                "use device=auto or device=cuda"
            )
        device = select_device(f"cuda:{self.local_rank}")
        torch.cuda.set_device(device)
        return device

    def share_batches(self, source):
        """The batch source this process trains on: its share of every global batch of `source`."""
        if not self.distributed:
            return source
        share = per_process_batch(source.batch_size, self.world_size)
        log.info(
            f"Distributed data parallel: {self.world_size} processes ({dist.get_backend()}), each training on {share} "
            f"of every batch of {source.batch_size}"
        )
        return BatchShare(source, slice(self.rank * share, (self.rank + 1) * share))

    def wrap(self, network: nn.Module) -> nn.Module:
        """`network` with its gradients averaged over the processes (DDP); itself when alone."""
        if not self.distributed:
            return network
        device = next(network.parameters()).device
        if device.type == "cuda":
            network = nn.SyncBatchNorm.convert_sync_batchnorm(network)
        return DataParallelModule(network, self, device_ids=[device.index] if device.type == "cuda" else None, **NO_BUFFER_SYNC)

    def all_true(self, flags: torch.Tensor) -> torch.Tensor:
        """Element-wise AND of a bool tensor over the processes, on its device without a host sync."""
        if not self.distributed:
            return flags
        agreed = flags.to(torch.int32)
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
        return agreed.bool()

    def any_rank(self, flag: bool) -> bool:
        """True in every process if it is True in any (gloo, on the CPU)."""
        if not self.distributed:
            return flag
        return bool(self._max_over_ranks(int(bool(flag))))

    def any_signal(self, name: str | None) -> str | None:
        """The stop signal received by any process (the highest-numbered if several), or None; the
        same answer in every process, so that all of them stop at the same step."""
        if not self.distributed:
            return name
        number = self._max_over_ranks(signal_number(name))
        return signal_name(number)

    def require_same(self, what: str, value: int) -> None:
        """Stop unless every process holds the same `value` (for example the step it resumed at)."""
        if not self.distributed:
            return
        values = [None] * self.world_size
        dist.all_gather_object(values, value)
        if len(set(values)) > 1:
            raise GanError(
                f"the processes of this run disagree on {what} ({', '.join(f'rank {r}: {v}' for r, v in enumerate(values))}); "
                "they must all read the same checkpoint: give the run directory on a file system every node shares"
            )

    def from_rank_0(self, ask: Callable[[], Any]) -> Any:
        """`ask()` called by rank 0 alone, its answer (or its GanError) given to every process: for a
        choice all must share that only one may make, such as creating the run directory."""
        if not self.distributed:
            return ask()
        answer = [None, None]  # [value, error message]
        if self.is_main:
            try:
                answer[0] = ask()
            except GanError as err:
                answer[1] = str(err)
        dist.broadcast_object_list(answer, src=0)
        if answer[1] is not None:
            raise GanError(answer[1])
        return answer[0]

    @staticmethod
    def _max_over_ranks(value: int) -> int:
        tensor = torch.tensor([value], dtype=torch.int64)  # a CPU tensor: goes through gloo
        dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
        return int(tensor.item())


def current() -> Parallel:
    """This process's place in the joined process group; rank 0 of 1 when there is none."""
    if not dist.is_initialized():
        return Parallel()
    return Parallel(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))


def signal_number(name: str | None) -> int:
    return signal.Signals[name].value if name else 0


def signal_name(number: int) -> str | None:
    return signal.Signals(number).name if number else None


class BatchShare:
    """One process's rows of every global batch a source draws; anything else is the source's own
    (shape, length, state_dict for resume: the data order is the same in every process)."""

    def __init__(self, source, rows: slice):
        self.source = source
        self.rows = rows

    def next(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        x, y = self.source.next()  # the global batch: (B, C, H, W), (B,) or None
        return x[self.rows], (y[self.rows] if y is not None else None)

    def next_from(self, domain: int) -> tuple[torch.Tensor, None]:
        """This process's rows of a global batch of one domain (a DomainBatchSource's next_from)."""
        x, _ = self.source.next_from(domain)
        return x[self.rows], None

    def __len__(self) -> int:
        return len(self.source)

    def __getattr__(self, name: str):
        return getattr(self.source, name)


class DataParallelModule(DistributedDataParallel):
    """DDP around a generator or discriminator, usable wherever the network itself is.

    Only forward passes whose backward pass produces this network's gradients go through DDP's
    machinery. Others call the network directly: sampling under no_grad, the generator's passes in
    all but the last of k D steps, and D judging fakes in G's step (D's parameters then do not require
    gradients). Through DDP those would wait for gradients that never come. The network's own
    attributes (`num_classes`, `codes`, ...) and its state_dict, without DDP's `module.` prefix, are
    reachable as if unwrapped, so checkpoints are the same as a single process's.
    """

    def __init__(self, network: nn.Module, parallel: Parallel, **ddp_options):
        super().__init__(network, **ddp_options)
        self.parallel = parallel

    def forward(self, *args, **kwargs):
        if torch.is_grad_enabled() and any(p.requires_grad for p in self.module.parameters()):
            return super().forward(*args, **kwargs)
        return self.module(*args, **kwargs)

    def sample_inputs(self, n: int, rng: torch.Generator | None = None, device: torch.device | None = None):
        """This process's n rows of a draw for the global batch (n * world_size rows) from the random
        stream every process shares: no two processes use the same latents, and together they use
        exactly the latents one process would draw for the global batch."""
        everyone = self.module.sample_inputs(n * self.parallel.world_size, rng, device)
        rows = slice(self.parallel.rank * n, (self.parallel.rank + 1) * n)
        return {name: value[rows] for name, value in everyone.items()}

    def state_dict(self, *args, **kwargs):
        return self.module.state_dict(*args, **kwargs)

    def load_state_dict(self, *args, **kwargs):
        return self.module.load_state_dict(*args, **kwargs)

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "module":  # not set yet, inside DDP's own __init__
                raise
            return getattr(self.module, name)
