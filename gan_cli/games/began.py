"""BEGAN (Berthelot et al. 2017): an autoencoder as discriminator, held in equilibrium with G.

D is an autoencoder and its energy is the L1 reconstruction error L(v) = mean |v - D(v)|. D learns
to reconstruct real images well and generated ones badly; G learns to make images D reconstructs
well. One step is the paper's update (its equation 4), with k_t the weight of the fakes in D's loss:

    L_D = L(x) - k_t L(G(z))              (D's update)
    L_G = L(G(z))                         (G's update)
    k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1)

gamma = E[L(G(z))] / E[L(x)] is the diversity ratio the equilibrium aims at: lower gamma, sharper
and less varied images. k_t rises while fakes are reconstructed too well (D should push them away)
and falls while they are reconstructed too badly. The convergence measure

    M_global = L(x) + |gamma L(x) - L(G(z))|

falls as the images improve (the paper's claim, which README measures against FID). L(x) and L(G(z))
in the k_t update and M_global come from D's step: one D, one batch, as in the paper's simultaneous
update. k_t is a device tensor in the game's state, saved in checkpoints and restored exactly.

The paper halves the learning rate when M_global stalls: `model.lr_stall_steps` (null: never)
compares M_global's mean over each window of that many steps with the best earlier window's.
"""

import math

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.games.base import Game, Precision
from gan_cli.models.began import BEGANDiscriminator, BEGANGenerator
from gan_cli.models.init import initialize
from gan_cli.training.updates import Updates


def reconstruction_error(autoencoder: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """BEGAN's energy of each image: the mean absolute error of its reconstruction, (B, C, H, W) -> (B,), fp32."""
    return (autoencoder(images).float() - images.float()).abs().flatten(1).mean(dim=1)


def equilibrium_update(k: torch.Tensor, real_error, fake_error, gamma: float, lambda_k: float) -> torch.Tensor:
    """k_{t+1} = clip(k_t + lambda_k (gamma L(x) - L(G(z))), 0, 1), on the device (no host sync).
    A non-finite step (which the NaN guard stops at or skips) leaves k_t as it was."""
    change = lambda_k * (gamma * real_error - fake_error)
    return torch.where(change.isfinite(), (k + change).clamp(0.0, 1.0), k)


def convergence_measure(real_error, fake_error, gamma: float) -> torch.Tensor:
    """M_global = L(x) + |gamma L(x) - L(G(z))|."""
    return real_error + (gamma * real_error - fake_error).abs()


class BEGANGame(Game):
    families = ("began",)
    optimizers = {"discriminator": ("D",), "generator": ("G",)}  # D first, as in the adversarial game
    averaged = ("G",)
    sampler = "G"
    uses_loss = False  # its objective is the equilibrium above, not one of loss=
    uses_d_steps = False  # one D and one G update per step; k_t does the balancing

    def __init__(self, cfg: DictConfig, shape: DataShape):
        super().__init__(cfg, shape)
        self.gamma, self.lambda_k = cfg.model.gamma, cfg.model.lambda_k
        self.k = torch.tensor(float(cfg.model.k_init))  # moves to the data's device at the first step
        self.stall = LearningRateHalving(cfg.model.lr_stall_steps) if cfg.model.lr_stall_steps else None

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        model = cfg.model
        networks = {
            "G": BEGANGenerator(shape, model.latent_dim, model.width, model.depth),
            "D": BEGANDiscriminator(shape, model.hidden_dim, model.width, model.depth),
        }
        for network in networks.values():
            initialize(network, model.init)
        return networks

    def step(self, data, updates: Updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        generator, autoencoder = self.networks["G"], self.networks["D"]
        real, _ = data.next()  # (B, C, H, W) in [-1, 1]
        inputs = generator.sample_inputs(len(real), rng, real.device)  # z (B, latent_dim)
        with precision():
            fake = generator(**inputs)  # keeps its graph for G's update below
        k = self.k.to(real.device)

        # D: L_D = L(x) - k_t L(G(z)), real and fake batches through the autoencoder in one pass.
        with precision():
            errors = reconstruction_error(autoencoder, torch.cat([real, fake.detach()]))  # (2B,)
        real_error, fake_error = errors[: len(real)].mean(), errors[len(real) :].mean()
        updates.apply("discriminator", real_error - k * fake_error)

        # G: L_G = L(G(z)) through the updated D (only G's weights get gradients).
        with updates.frozen("D"):
            with precision():
                generator_error = reconstruction_error(autoencoder, fake).mean()
            updates.apply("generator", generator_error)

        # Equilibrium: k_t follows gamma L(x) - L(G(z)) of D's step.
        real_error, fake_error = real_error.detach(), fake_error.detach()
        self.k = equilibrium_update(k, real_error, fake_error, self.gamma, self.lambda_k)
        m_global = convergence_measure(real_error, fake_error, self.gamma)
        if self.stall is not None:
            self.stall.observe(m_global, updates)
        return {
            "loss/D": (real_error - k * fake_error),
            "loss/G": generator_error.detach(),
            "began/L(x)": real_error,
            "began/L(G(z))": fake_error,
            "began/k_t": self.k,
            "began/M_global": m_global,
        }

    def state_dict(self) -> dict:
        return {"k": self.k.cpu(), "lr_halving": self.stall.state_dict() if self.stall is not None else None}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.k = state["k"].to(device)
        if self.stall is not None and state.get("lr_halving") is not None:
            self.stall.load_state_dict(state["lr_halving"], device)


class LearningRateHalving:
    """Halve every learning rate of the game when M_global stalls: at the end of each window of
    `window` steps, when the window's mean M_global is not below the best earlier window's.
    One host sync per window."""

    def __init__(self, window: int):
        self.window = window
        self.total = torch.zeros(())  # M_global summed over the current window (on the device once stepping)
        self.steps = 0  # steps of the current window so far
        self.best = math.inf  # the lowest window mean so far
        self.halvings = 0
        self.restored = False  # after a resume: the optimizers' learning rates are the config's again

    def observe(self, m_global: torch.Tensor, updates: Updates) -> None:
        if self.restored:  # the loop set the config's learning rates on resume: halve them as often again
            self._scale(updates, 0.5**self.halvings)
            self.restored = False
        # A non-finite step (skipped by the NaN guard) adds nothing.
        self.total = self.total.to(m_global.device) + torch.nan_to_num(m_global, nan=0.0, posinf=0.0, neginf=0.0)
        self.steps += 1
        if self.steps < self.window:
            return
        mean = float(self.total) / self.steps
        self.total, self.steps = torch.zeros((), device=m_global.device), 0
        if mean < self.best:
            self.best = mean
        else:
            self.halvings += 1
            self._scale(updates, 0.5)

    @staticmethod
    def _scale(updates: Updates, factor: float) -> None:
        for optimizer in updates.optimizers.values():
            for group in optimizer.param_groups:
                group["lr"] *= factor

    def state_dict(self) -> dict:
        return {"total": self.total.cpu(), "steps": self.steps, "best": self.best, "halvings": self.halvings}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        self.total = state["total"].to(device)
        self.steps, self.best, self.halvings = int(state["steps"]), float(state["best"]), int(state["halvings"])
        self.restored = True
