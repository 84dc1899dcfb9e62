"""Exponential moving average of a network's weights: the game's `averaged` networks (the GANs' G),
which sample grids, evaluations and gan-sample use."""

import copy

import torch
from torch import nn


class EMA:
    """An averaged copy of a network (`module`); call `update(network)` after each training step.

    The decay ramps up as (1 + n) / (10 + n) over the first n updates, so the random initial weights
    fade within a few hundred steps even at decay 0.999. Buffers (batch-norm statistics) are copied
    from the live generator rather than averaged.

    The update count lives on the host and the weights are blended by one fused kernel, so an update
    never waits for the device (torch.optim.swa_utils.AveragedModel reads its device-side count
    back twice per update).
    """

    def __init__(self, network: nn.Module, decay: float):
        self.module = copy.deepcopy(network).requires_grad_(False)
        self.decay = decay
        self.updates = 0

    @torch.no_grad()
    def update(self, network: nn.Module) -> None:
        averaged, live = list(self.module.parameters()), [p.detach() for p in network.parameters()]
        if self.updates == 0:
            torch._foreach_copy_(averaged, live)
        else:
            beta = min(self.decay, (1 + self.updates) / (10 + self.updates))
            torch._foreach_lerp_(averaged, live, 1 - beta)
        for averaged_buffer, buffer in zip(self.module.buffers(), network.buffers()):
            averaged_buffer.copy_(buffer)
        self.updates += 1
