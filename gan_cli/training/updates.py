"""Updates as a service: what every game's step asks of its optimizers, in one place.

A game names its optimizers (`Game.optimizers`: name -> the networks it updates) and, in its step,
calls `updates.apply(name, loss)`: zero the gradients, backpropagate (scaled, when training in fp16),
let the NaN guard check the loss and the gradients, and step. `updates.frozen("D")` lends a network
to another network's update without computing its own weight gradients (G's step through D). A
game never calls `backward()` itself, so loss scaling, the NaN guard and DDP work for every family
alike (Lightning's manual optimization and stylegan2-ada's phases are built the same way).
"""

import copy
from contextlib import contextmanager

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.training.nan_guard import NanGuard
from gan_cli.training.optim import build_optimizer


class Updates:
    def __init__(
        self,
        optimizers: dict[str, torch.optim.Optimizer],
        networks: dict[str, nn.Module],
        nan_guard: NanGuard,
        fp16: bool,
        device: torch.device,
    ):
        self.optimizers = optimizers
        self.networks = networks
        self.scalers = {name: torch.amp.GradScaler(device.type, enabled=fp16) for name in optimizers}
        self.nan_guard = nan_guard
        self.step = 0  # the step being trained, 1-based while a step runs (the loop sets it)

    def apply(self, name: str, loss: torch.Tensor) -> None:
        """One step of optimizer `name` on `loss` (0-d); the NaN guard applies it unless the loss or
        the gradients are non-finite (train.on_nan)."""
        optimizer, scaler = self.optimizers[name], self.scalers[name]
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        self.nan_guard.apply_update(name, loss, optimizer, scaler, self.step)

    @contextmanager
    def frozen(self, *names: str):
        """Within the block the named networks compute no weight gradients (only what flows through them)."""
        for name in names:
            self.networks[name].requires_grad_(False)
        try:
            yield
        finally:
            for name in names:
                self.networks[name].requires_grad_(True)

    def lookahead(self, name: str, network: str) -> "Lookahead":
        """A copy of `network` and of optimizer `name` (which updates it alone), state included, for
        updates that must leave both as they are (an unrolled D, Metz et al. 2017)."""
        return Lookahead(self.networks[network], self.optimizers[name])

    def learning_rates(self) -> dict[str, float]:
        return {f"lr/{name}": optimizer.param_groups[0]["lr"] for name, optimizer in self.optimizers.items()}

    def state_dict(self) -> dict:
        return {
            "optimizers": {name: optimizer.state_dict() for name, optimizer in self.optimizers.items()},
            "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        for name, optimizer in self.optimizers.items():
            optimizer.load_state_dict(state["optimizers"][name])
            self.scalers[name].load_state_dict(state["scalers"][name])

    def apply_settings(self, nodes: DictConfig, node_of: dict[str, str]) -> None:
        """Loaded optimizer states carry their old learning rates and implementation (`fused`); the
        config's are the ones to use (a resumed run may change them)."""
        for name, optimizer in self.optimizers.items():
            node = nodes[node_of[name]]
            for group in optimizer.param_groups:
                group["lr"] = node.lr
                if "fused" in node and "fused" in group:  # (optimizers without a fused implementation have no such key)
                    group["fused"] = node.fused


class Lookahead:
    """A network's copy and a copy of its optimizer with the optimizer's state (Adam's moments, its
    step count): steps on the copy are the steps the real pair would take, and change nothing of it.

    Its updates are plain ones, not a service of Updates: no loss scaling, no NaN guard, no DDP
    gradient averaging (under torchrun each process trains its copy on its own share). The copy is
    thrown away after the step that reads it, and what it does shows in the loss that reads it,
    which the NaN guard checks.
    """

    def __init__(self, network: nn.Module, optimizer: torch.optim.Optimizer):
        # DDP's wrapper holds the network as `module`; a deep copy drops a compiled forward (eager copy).
        self.network = copy.deepcopy(getattr(network, "module", network))
        self.optimizer = type(optimizer)(self.network.parameters(), **optimizer.defaults)
        # Deep-copied: load_state_dict keeps the tensors it is given, and the copy's steps update them in place.
        self.optimizer.load_state_dict(copy.deepcopy(optimizer.state_dict()))

    def apply(self, loss: torch.Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()


def build_optimizers(
    nodes: DictConfig, networks: dict[str, nn.Module], updated: dict[str, tuple[str, ...]], node_of: dict[str, str]
) -> dict[str, torch.optim.Optimizer]:
    """One optimizer per name of `updated` (name -> the networks it updates), built from the config
    node `optimizer.<node_of[name]>`."""
    optimizers = {}
    for name, network_names in updated.items():
        parameters = nn.ModuleList([networks[network] for network in network_names])
        node = node_of[name]
        optimizers[name] = build_optimizer(nodes[node], parameters, f"optimizer.{node}")
    return optimizers
