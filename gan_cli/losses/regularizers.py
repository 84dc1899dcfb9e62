"""Terms on D's input gradients, added to D's loss by the training loop.

Both are defined per input D judges, so the discriminator must not mix its inputs (no batch norm).
A packed D (PacGAN, model.pack=m) judges m-tuples of samples: its input is the tuple, and the
gradient norms below are taken over each tuple's m samples together.
"""

import torch
from torch import nn


def _input_gradients(discriminator: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    """d(sum of D's logits)/dx, kept in the graph so the penalty itself can be backpropagated."""
    x = x.detach().requires_grad_(True)
    # Eager even when D is compiled (train.compile): compiled graphs have no double backward. (A stance
    # set here, not as a decorator: that would import the compiler, 1.3 s, into every command.)
    with torch.compiler.set_stance("force_eager"):
        logits = discriminator(x, y).logits.float()
    (gradients,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return gradients.float().reshape(len(logits), -1)  # (B / m, m*C*H*W): one row per input D judged


def gradient_penalty(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, labels: torch.Tensor | None, rng=None
) -> torch.Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad D(x_hat)|| - 1)^2] at random points x_hat on the
    lines between real and fake samples (the penalty's weight, lambda, is applied by the caller)."""
    # One point per input D judges, on the line between a real and a fake one: a packed D's m-tuple
    # shares its eps. (Modules other than gan_cli's discriminators judge one sample at a time.)
    pack = getattr(discriminator, "pack", 1)
    eps = torch.rand(len(real) // pack, *[1] * (real.dim() - 1), generator=rng, device=real.device)  # (B / m, 1, 1, 1)
    eps = eps.repeat_interleave(pack, dim=0)  # (B, 1, 1, 1)
    between = eps * real.detach() + (1 - eps) * fake.detach()
    norms = _input_gradients(discriminator, between, labels).norm(dim=1)
    return ((norms - 1) ** 2).mean()


def r1_penalty(discriminator: nn.Module, real: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """R1 (Mescheder et al. 2018): 0.5 * E[||grad D(x)||^2] on real data (times gamma by the caller)."""
    return 0.5 * _input_gradients(discriminator, real, labels).pow(2).sum(dim=1).mean()


@torch.no_grad()
def clip_weights(network: nn.Module, bound: float) -> None:
    """WGAN's weight clipping: every parameter into [-bound, bound], which keeps a critic (roughly) Lipschitz."""
    for param in network.parameters():
        param.clamp_(-bound, bound)
