"""What a non-finite (NaN or inf) loss or gradient does to a run: `train.on_nan`.

stop (the default): the run stops with one message naming the first step, the update (the game's
  optimizer: generator, discriminator, ...) and whether its loss or its gradients went non-finite. Nothing is written from that step on, so the
  newest checkpoint on disk is the last good state (and save_checkpoint refuses non-finite weights).
skip: an update whose loss or gradients are non-finite is not applied (its optimizer does not step);
  a step with a dropped update counts as skipped (a log line, the TensorBoard scalar
  `train/skipped_steps`, and the count is kept in checkpoints), and once more than
  `train.max_skipped_steps` steps were skipped the run stops with a message.

Cost. Every update computes one finiteness flag on the device: the loss, and the total norm of the
gradients (one fused reduction; with fp16 loss scaling the gradients are left to the GradScaler,
which already skips overflowing steps). Under `stop` nothing reaches the host per step: the flags
are folded into "first non-finite step" counters on the device, read once at each step where the
loop logs or writes something (where it synchronises anyway) and always before any write. Under
`skip` an update must be decided before it is applied: one host sync per update (free on the CPU).
"""

import logging

import torch
from torch.nn.utils import get_total_norm

from gan_cli.errors import GanError

log = logging.getLogger(__name__)

CHECKS = ("loss", "gradients")  # what can go non-finite in an update, in the order it is computed


class NanGuard:
    def __init__(self, policy: str, max_skipped_steps: int, updates: tuple[str, ...], device: torch.device, agree=None):
        self.policy = policy
        self.updates = updates  # the optimizers' names, in the order a step applies them (ties go to the first)
        self.max_skipped_steps = max_skipped_steps
        self.skipped_steps = 0  # steps with at least one dropped update, over the run's whole life
        self._dropped: list[str] = []  # the current step's dropped updates (skip)
        # The first step at which each (update, check) went non-finite, -1 while none did (stop).
        self._first_bad = torch.full((len(updates), len(CHECKS)), -1, dtype=torch.long, device=device)
        # Several processes (DDP) must decide alike: `agree` turns this process's finiteness flags into
        # all processes' (a collective on the device); None for a single process.
        self._agree = agree

    def apply_update(self, name: str, loss: torch.Tensor, optimizer, scaler, step: int) -> None:
        """Step `optimizer` through `scaler` with the gradients in place, unless policy and values say no.

        `name` is the optimizer's (one of `updates`); `loss` the update's 0-d loss; `step` the step being
        trained (1-based).
        """
        finite = self._finite(loss, optimizer, check_gradients=not scaler.is_enabled())  # (2,) bool
        if self._agree is not None:
            finite = self._agree(finite)
        if self.policy == "skip":
            if not finite.all():  # host sync: the update must be decided now
                failed = CHECKS[int((~finite).nonzero()[0])]
                self._dropped.append(f"{name} ({failed})")
                return
        else:
            row = self._first_bad[self.updates.index(name)]
            row.copy_(torch.where((row < 0) & ~finite, step, row))  # stays on the device
        scaler.step(optimizer)
        scaler.update()

    def end_step(self, step: int, synchronise: bool) -> None:
        """Count the step if it dropped an update (skip); when `synchronise`, stop if an update of
        any step so far was non-finite (stop). Raises GanError to stop the run."""
        if self._dropped:
            self.skipped_steps += 1
            log.warning(
                f"step {step}: dropped the non-finite update of {' and '.join(self._dropped)}; "
                f"{self.skipped_steps} step(s) skipped so far, at most {self.max_skipped_steps} allowed"
            )
            self._dropped = []
            if self.skipped_steps > self.max_skipped_steps:
                raise GanError(
                    f"training diverged: {self.skipped_steps} steps had non-finite losses or gradients, more than "
                    f"train.max_skipped_steps={self.max_skipped_steps}; stopped at step {step} without a checkpoint of it, "
                    "the newest one is kept. Lower the learning rate, or allow more skipped steps"
                )
        if synchronise and self.policy == "stop":
            self._stop_if_non_finite()

    def scalars(self) -> dict[str, float]:
        """Extra TensorBoard scalars: the skipped-step count under `skip`."""
        return {"train/skipped_steps": self.skipped_steps} if self.policy == "skip" else {}

    def _stop_if_non_finite(self) -> None:
        first_bad = self._first_bad.tolist()  # one host sync
        failures = [
            (step, name, check)
            for name, row in zip(self.updates, first_bad)
            for check, step in zip(CHECKS, row)
            if step >= 0
        ]
        if failures:
            step, name, check = min(failures, key=lambda f: f[0])  # ties: the first update, loss before gradients
            raise GanError(
                f"training diverged at step {step}: the {name}'s {check} became NaN or inf; no checkpoint "
                f"was written from step {step} on, so the newest one is the last good state. Lower the learning rate "
                "and resume from it, or set train.on_nan=skip to drop such updates"
            )

    @staticmethod
    def _finite(loss: torch.Tensor, optimizer, check_gradients: bool) -> torch.Tensor:
        """(loss finite, gradients finite) as a bool tensor on the loss's device."""
        gradients = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        # The 2-norm of all gradients is finite exactly when every gradient is (or overflows float32,
        # which no sane update has either): one fused reduction instead of one per tensor.
        norm = get_total_norm(gradients) if check_gradients and gradients else loss.new_zeros(())
        return torch.stack([loss.isfinite(), norm.isfinite()])
