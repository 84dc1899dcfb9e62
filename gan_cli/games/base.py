"""What every game declares: the contract between a family and the loop.

A game owns the game, the loop owns time. A game is built from the run's config and the data's
shape, and declares

- `networks`: its trained modules by name ("G", "D"; "encoder", "decoder"; ...);
- `optimizers`: optimizer name -> the networks it updates; each is built from the config node
  `optimizer.<name>` (or `optimizer.<optimizer_nodes[name]>` where a game shares a node);
- `averaged`: the networks that get an EMA copy (train.ema_decay);
- `sampler`: the network that turns latents into samples. It keeps the generator contract of
  gan_cli.models.base.Generator (`sample_inputs(n, rng, device, labels)`, `forward(**inputs)`,
  `latent_dim`, `num_classes`, `codes`), so that grids, gan-sample and gan-eval draw from any family;
- `prepare_sampling(samplers, data)`: fit what sampling needs beyond the weights (a latent density);
- its own training state (`state_dict` / `load_state_dict`: a replay buffer, BEGAN's k_t, ...);
- `step(data, updates, rng, precision)`: one training step, returning its scalars as 0-d device
  tensors (no host syncs).

The loop moves the networks to the device, wraps them (DDP, compile), averages, logs, draws,
evaluates and checkpoints, and never names a network.
"""

from typing import Callable, ContextManager

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape

Precision = Callable[[], ContextManager]  # a fresh autocast context for a forward pass


class Game:
    families: tuple[str, ...] = ()  # the model.name values this game trains
    optimizers: dict[str, tuple[str, ...]] = {}  # in the order a step applies them (the NaN guard's tie-break)
    optimizer_nodes: dict[str, str] = {}  # optimizer name -> its config node, where they differ
    averaged: tuple[str, ...] = ()
    sampler: str = "G"
    encoder: str | None = None  # the network that maps images to codes (encoder families): reconstructions
    uses_loss: bool = True  # its discriminator plays the adversarial loss of `loss=` (the loss group)
    uses_d_steps: bool = True  # train.d_steps (k discriminator updates per step) and train.replay_* apply
    draws_pairs: bool = False  # its sampler draws one image per domain of two (CoGAN): the pair metrics score it

    def __init__(self, cfg: DictConfig, shape: DataShape):
        self.networks: dict[str, nn.Module] = self.build_networks(cfg, shape)

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        """The game's networks for the run config `cfg` and data `shape`, initialised, on the CPU.
        Also what gan-sample and gan-eval rebuild from a checkpoint's stored config."""
        raise NotImplementedError

    def step(self, data, updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def prepare_sampling(self, samplers: dict[str, nn.Module], data) -> None:
        """Fit what sampling needs beyond the trained weights (the autoencoder's mixture over its
        codes) to `samplers` (the networks samples come from: EMA copies where there are some) and
        the `data`. The loop calls it before it draws, evaluates or writes a checkpoint. It must not
        change training: no draws from the training generators, no change of the data order."""

    def node_of(self) -> dict[str, str]:
        """Optimizer name -> the optimizer.<node> it is built from."""
        return {name: self.optimizer_nodes.get(name, name) for name in self.optimizers}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        pass
