"""InfoGAN latent codes (Chen et al. 2016): categorical codes and continuous codes beside z.

A batch of codes is one tensor c of shape (B, code_dim): each categorical code as a one-hot block,
then one column per continuous code, uniform in [-1, 1]. The Q head predicts, per categorical code,
logits over its values and, per continuous code, a Gaussian mean and log standard deviation.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class CodeSpec:
    categorical: tuple[int, ...] = ()  # number of values of each categorical code, e.g. (10,)
    continuous: int = 0  # number of continuous codes

    def __bool__(self) -> bool:
        return bool(self.categorical) or self.continuous > 0

    @property
    def dim(self) -> int:
        """Width of c: one-hot blocks plus one column per continuous code."""
        return sum(self.categorical) + self.continuous

    @property
    def q_dim(self) -> int:
        """Width of Q's output: logits per categorical value, (mean, log std) per continuous code."""
        return sum(self.categorical) + 2 * self.continuous

    def sample(self, n: int, rng: torch.Generator | None = None, device=None) -> torch.Tensor:
        """Codes (n, dim): uniform categories as one-hot blocks, continuous codes ~ U(-1, 1)."""
        blocks = [
            F.one_hot(torch.randint(k, (n,), generator=rng, device=device), k).float() for k in self.categorical
        ]
        blocks.append(torch.rand(n, self.continuous, generator=rng, device=device) * 2 - 1)
        return torch.cat(blocks, dim=1)

    def split_codes(self, c: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
        """c (B, dim) -> ([category indices (B,) per categorical code], continuous values (B, continuous))."""
        blocks = c.split([*self.categorical, self.continuous], dim=1)
        return [block.argmax(dim=1) for block in blocks[:-1]], blocks[-1]

    def split_predictions(self, q: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """Q's output (B, q_dim) -> ([logits (B, k) per categorical code], means (B, m), log stds (B, m))."""
        blocks = q.split([*self.categorical, self.continuous, self.continuous], dim=1)
        return list(blocks[: len(self.categorical)]), blocks[-2], blocks[-1]
