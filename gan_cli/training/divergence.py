"""train.on_divergence: a run that fails without a NaN, named in the log (warn) or stopped (stop).

Two signs of a run that has stopped learning, each counted in consecutive steps:

- D wins: loss/D below `train.divergence.d_loss_below` and D(G(z)) below `fake_score_below`. D then
  rejects every fake with certainty, and G's gradient through D's saturated sigmoid vanishes (the
  failure Goodfellow et al. 2014, sec. 3, describe for log(1 - D(G(z)))): G's loss climbs and its
  samples stop changing. Looked for with the cross-entropy losses (minimax, nonsaturating), whose
  D(G(z)) is a probability; a critic's raw output near 0 means nothing of the kind.
- Losses without bound: the magnitude of some loss/* value (D's, G's, a penalty) above
  `train.divergence.loss_above`.

Either sign lasting `train.divergence.steps` steps in a row is a divergence that started at its first
step. `warn` logs one line naming it (again if the run recovers and then diverges again) and trains
on; `stop` ends the run with one message naming the step it started and the resume command of the
newest checkpoint written before that step.

Cost: the signs are counted on the device, a few tiny tensor operations per step and no host sync;
the counts are read only at the steps where the loop looks anyway (log lines, grids, evaluations,
checkpoints), so a divergence is noticed at most log.every steps late, and named with its exact
first step. A scalar a family does not log (a game without D has no D(G(z))) is simply no sign.
"""

import logging
from pathlib import Path

import torch
from omegaconf import DictConfig

from gan_cli.errors import GanError
from gan_cli.losses import LOSSES
from gan_cli.losses.adversarial import CrossEntropyLoss

log = logging.getLogger(__name__)

POLICIES = ("warn", "stop")


class DivergenceGuard:
    def __init__(
        self, policy: str, settings: DictConfig, run_dir: Path, device: torch.device, d_score_is_probability: bool, agree=None
    ):
        self.policy = policy
        self.settings = settings
        self.run_dir = run_dir
        self.d_score_is_probability = d_score_is_probability
        self.signs = (
            f"D won (loss/D below {settings.d_loss_below} and D(G(z)) below {settings.fake_score_below}: G's gradient vanishes)",
            f"losses without bound (a loss beyond {settings.loss_above} in magnitude)",
        )
        # Per sign: how many steps in a row it has held, and the step where that run of steps began.
        self.streaks = torch.zeros(len(self.signs), dtype=torch.long, device=device)
        self.starts = torch.zeros(len(self.signs), dtype=torch.long, device=device)
        self._no_sign = torch.zeros((), dtype=torch.bool, device=device)
        self._warned: set[tuple[int, int]] = set()  # (sign, start) already named in the log
        # Several processes (DDP) must stop alike: `agree(flag)` is True when any process's flag is.
        self._agree = agree or (lambda flag: flag)

    @classmethod
    def for_run(cls, cfg: DictConfig, run_dir: Path, device: torch.device, agree=None) -> "DivergenceGuard":
        loss = LOSSES.get(cfg.loss.name) if "loss" in cfg else None
        probability = isinstance(loss, type) and issubclass(loss, CrossEntropyLoss)
        return cls(cfg.train.on_divergence, cfg.train.divergence, run_dir, device, probability, agree)

    def observe(self, step: int, scalars: dict[str, torch.Tensor], look: bool) -> None:
        """Count step `step`'s signs (on the device); when `look`, name or stop a divergence."""
        held = self._signs(scalars)  # (2,) bool
        self.streaks.add_(1).mul_(held)
        self.starts.copy_(torch.where(held & (self.streaks == 1), step, self.starts))
        if look:
            self._check()

    def _signs(self, scalars: dict[str, torch.Tensor]) -> torch.Tensor:
        d_loss, fake_score = scalars.get("loss/D"), scalars.get("D(G(z))")
        d_wins = self._no_sign
        if self.d_score_is_probability and d_loss is not None and fake_score is not None:
            d_wins = (d_loss < self.settings.d_loss_below) & (fake_score < self.settings.fake_score_below)
        losses = [value for name, value in scalars.items() if name.startswith("loss/")]
        unbounded = torch.stack(losses).abs().max() > self.settings.loss_above if losses else self._no_sign
        return torch.stack([d_wins, unbounded])

    def _check(self) -> None:
        streaks, starts = torch.stack([self.streaks, self.starts]).tolist()  # one host sync
        diverged = [(start, sign) for sign, (streak, start) in enumerate(zip(streaks, starts)) if streak >= self.settings.steps]
        if self.policy == "stop":
            if self._agree(bool(diverged)):
                raise GanError(self._stop_message(min(diverged) if diverged else None))
            return
        for start, sign in diverged:
            if (sign, start) not in self._warned:
                self._warned.add((sign, start))
                log.warning(
                    f"training diverged at step {start}: {self.signs[sign]} for {self.settings.steps} steps in a row; training "
                    "goes on (train.on_divergence=warn). Lower the learning rates and resume from a checkpoint before "
                    "that step, or set train.on_divergence=stop"
                )

    def _stop_message(self, first: tuple[int, int] | None) -> str:
        if first is None:  # another process saw it (DDP)
            return "training diverged in another process (train.on_divergence=stop); see its message"
        start, sign = first
        return (
            f"training diverged at step {start}: {self.signs[sign]} for {self.settings.steps} steps in a row; stopped "
            f"(train.on_divergence=stop). {last_good_checkpoint(self.run_dir, start)}"
        )


def last_good_checkpoint(run_dir: Path, before: int) -> str:
    """Where to resume a run that diverged at step `before`: the newest checkpoint written before it."""
    written = {path: checkpoint_step(path) for path in sorted((run_dir / "checkpoints").glob("*.pt"))}
    good = {path: step for path, step in written.items() if step is not None and step < before}
    if not good:
        return (
            f"No checkpoint was written before step {before}, so none is known good: start again with lower "
            "learning rates (checkpoint.keep_every keeps snapshots to go back to)"
        )
    path = max(good, key=lambda p: (good[p], p.name == "last.pt"))  # of equal steps, last.pt: resume=<run dir>
    resume = run_dir if path.name == "last.pt" else path
    return (
        f"The last good checkpoint is {path} (step {good[path]}); continue from it with lower learning rates: "
        f"gan-train resume={resume} optimizer.lr=<lower>"
    )


def checkpoint_step(path: Path) -> int | None:
    """The step of a checkpoint file, read without loading its tensors; None for a file that does not load."""
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True, mmap=True)["step"])
    except Exception:  # a damaged or foreign file is no place to resume from
        return None
