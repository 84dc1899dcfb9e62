"""What a discriminator may see of a batch beyond one sample at a time: two remedies for mode collapse.

A collapsed generator makes samples that look alike. A D that judges one sample at a time cannot
tell, since each sample may look real on its own; both remedies let D see how alike samples are.

- Minibatch standard deviation (Karras et al. 2018, "Progressive Growing of GANs", section 3):
  before D's head, one more feature that holds a batch statistic: the standard deviation of each
  feature over the batch, averaged over features and positions. Low for a collapsed batch.
- Packing (Lin et al. 2018, "PacGAN"): D judges m samples at once, concatenated along channels
  (or features), all real or all fake. A collapsed batch makes m-tuples of look-alikes, which real
  tuples almost never are.
"""

import torch
from torch import nn


class MinibatchStd(nn.Module):
    """Append one constant feature map holding the batch's mean standard deviation.

    x (B, C, H, W) -> (B, C + 1, H, W), or (B, F) -> (B, F + 1) for fully-connected features.
    The statistic is taken over the whole batch (ProGAN's groups of 4 are the special case of a
    batch of 4); under DDP over each process's share.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Per feature and position over the batch: (C, H, W). The epsilon keeps the square root's
        # gradient finite for a batch of identical samples, the very case this feature is for.
        std = (x.float().var(dim=0, unbiased=False) + 1e-8).sqrt()
        statistic = std.mean().to(x.dtype).expand(len(x), 1, *x.shape[2:])  # (B, 1, H, W) or (B, 1)
        return torch.cat([x, statistic], dim=1)


def packed(x: torch.Tensor, pack: int) -> torch.Tensor:
    """m consecutive samples as one (PacGAN): (B, C, ...) -> (B / m, m * C, ...).

    Row i of the result holds samples i*m, ..., i*m + m - 1, their channels side by side. A batch
    whose size m does not divide is refused before training (gan_cli.validation)."""
    if pack == 1:
        return x  # (keeps the layout, channels-last included, of the unpacked input)
    return x.reshape(len(x) // pack, pack * x.shape[1], *x.shape[2:])
