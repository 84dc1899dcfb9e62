"""The learning-rate schedule of a run: constant, or constant and then a linear decay to zero.

`train.lr_decay_from=f` keeps every optimizer at its configured learning rate for the first f of
the run's steps, then lowers it linearly so that the last step takes 1 / (remaining steps) of it
(CycleGAN's schedule, Zhu et al. 2017: 100 epochs constant, 100 decaying; f = 0.5). Smaller steps
at the end let G settle where the larger ones only circled (sharper samples, points on their modes).

The rate is a function of the step alone, so a resumed run continues the schedule exactly: its
optimizers start from the configured rates (Updates.apply_settings) and the schedule is built at
the resumed step. torch's LambdaLR applies it.
"""

from torch.optim.lr_scheduler import LambdaLR

from gan_cli.training.updates import Updates


def linear_decay(start_fraction: float, total_steps: int):
    """The factor of the configured learning rate at step t (1-based): 1 up to step
    floor(start_fraction * total_steps), then (total_steps - t + 1) / (total_steps - that step)."""
    start = int(start_fraction * total_steps)
    return lambda t: 1.0 if t <= start else (total_steps - t + 1) / (total_steps - start)


class LearningRateSchedule:
    """Sets the learning rates of step `first_step` on construction and of each next step on `advance()`."""

    def __init__(self, updates: Updates, start_fraction: float | None, first_step: int, total_steps: int):
        if start_fraction is None:
            self.schedulers = []
            return
        factor = linear_decay(start_fraction, total_steps)
        for optimizer in updates.optimizers.values():  # a loaded state's base rate would outlive a changed config
            for group in optimizer.param_groups:
                group.pop("initial_lr", None)
        # LambdaLR counts from 0 at construction; its count i is the step first_step + i.
        self.schedulers = [
            LambdaLR(optimizer, lambda i: factor(first_step + i)) for optimizer in updates.optimizers.values()
        ]

    def advance(self) -> None:
        for scheduler in self.schedulers:
            scheduler.step()
