"""Optimizers from Hydra nodes (`_target_` + `_partial_`), restricted to torch.optim."""

import re

import torch
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig
from torch import nn

from gan_cli.errors import GanError


def build_optimizer(node: DictConfig, module: nn.Module, key: str) -> torch.optim.Optimizer:
    """Instantiate the optimizer node for `module`'s parameters.

    Only classes of torch.optim are accepted: a config can come from a checkpoint somebody else
    wrote, and `_target_` must not name arbitrary code.
    """
    target = str(node.get("_target_", ""))
    if not _is_torch_optimizer(target):
        raise GanError(f"{key}._target_={target!r} is not an optimizer of torch.optim (for example torch.optim.Adam)")
    return instantiate(node)(module.parameters())


def _is_torch_optimizer(target: str) -> bool:
    if not re.fullmatch(r"torch\.optim\.[A-Za-z]\w*", target):
        return False
    try:
        return issubclass(get_class(target), torch.optim.Optimizer)
    except (ImportError, ValueError, TypeError):
        return False
