"""Exponential moving average of the generator's weights (used for sample grids and gan-sample)."""

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel


def make_ema(generator: nn.Module, decay: float) -> AveragedModel:
    """An averaged copy of `generator`; call `.update_parameters(generator)` after each G step.

    The decay ramps up as (1 + n) / (10 + n) over the first updates, so the random initial weights
    fade within a few hundred steps even at decay 0.999. Buffers (batch-norm statistics) are copied
    from the live generator rather than averaged.
    """

    def update(ema_params: list[torch.Tensor], params: list[torch.Tensor], num_updates: torch.Tensor) -> None:
        beta = torch.clamp((1 + num_updates) / (10 + num_updates), max=decay)  # a tensor: no host sync
        for ema_param, param in zip(ema_params, params):
            ema_param.lerp_(param, 1 - beta)

    return AveragedModel(generator, multi_avg_fn=update)
