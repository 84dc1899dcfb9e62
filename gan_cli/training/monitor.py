"""What a run reports: TensorBoard scalars and images, a terminal progress bar, and log lines.

Use it inside `tqdm.contrib.logging.logging_redirect_tqdm()` so log lines scroll above the bar.

Per-step values stay on the device and are summed there; they reach the host once per logging
interval (one sync), so logging does not stall a GPU.
"""

import logging
import sys
import time
from pathlib import Path

import torch
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

log = logging.getLogger(__name__)


class TrainingMonitor:
    def __init__(
        self, run_dir: Path, start_step: int, total_steps: int, images_per_step: int, log_every: int, progress_bar: bool
    ):
        # purge_step hides events a killed run logged after its last checkpoint (this run logs from
        # start_step + 1 on), so a resumed run's curves continue without gap or duplicate; for a new
        # run it hides the events of an attempt killed in the same folder before its first checkpoint.
        self.writer = SummaryWriter(str(run_dir / "tb"), purge_step=start_step + 1)
        self.bar = tqdm(
            total=total_steps,
            initial=start_step,
            unit="step",
            dynamic_ncols=True,
            disable=not (progress_bar and sys.stderr.isatty()),
        )
        self.total_steps = total_steps
        self.images_per_step = images_per_step
        self.log_every = log_every
        self.sums: dict[str, torch.Tensor] = {}
        self.count = 0
        self.last_means: dict[str, float] = {}  # the scalars of the latest logged interval
        self.window_start = (start_step, time.perf_counter())

    def record(self, step: int, scalars: dict[str, torch.Tensor], extras: dict[str, float]) -> None:
        """Add one step's scalars (0-d tensors); every `log_every` steps, write their means."""
        for name, value in scalars.items():
            self.sums[name] = self.sums[name] + value if name in self.sums else value.detach().clone()
        self.count += 1
        self.bar.update(1)
        if step % self.log_every == 0 or step == self.total_steps:
            self._flush(step, extras)

    def _flush(self, step: int, extras: dict[str, float]) -> None:
        means = dict(zip(self.sums, torch.stack(list(self.sums.values())).div(self.count).tolist()))
        self.last_means = means
        first_step, started = self.window_start
        now = time.perf_counter()
        steps_per_second = (step - first_step) / max(now - started, 1e-9)
        images_per_second = steps_per_second * self.images_per_step
        eta = (self.total_steps - step) / max(steps_per_second, 1e-9)
        for name, value in {**means, **extras, "speed/images_per_second": images_per_second}.items():
            self.writer.add_scalar(name, value, step)
        shown = "  ".join(f"{name.replace('/', '_')} {value:.3f}" for name, value in means.items())
        self.bar.set_postfix_str(f"{shown}  {images_per_second:.0f} img/s")
        line = f"step {step}/{self.total_steps}  {shown}  {images_per_second:.0f} img/s  eta {_duration(eta)}"
        log.info(line)
        self.sums, self.count = {}, 0
        self.window_start = (step, now)

    def add_scalar(self, tag: str, value: float, step: int) -> None:
        self.writer.add_scalar(tag, value, step)

    def add_image(self, tag: str, grid: torch.Tensor, step: int) -> None:
        """`grid` float (3, H, W) in [0, 1]."""
        self.writer.add_image(tag, grid, step)

    def close(self) -> None:
        self.bar.close()
        self.writer.close()

    def __enter__(self) -> "TrainingMonitor":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"

