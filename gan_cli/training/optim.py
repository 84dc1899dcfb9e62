"""Optimizers from Hydra nodes (`_target_` + `_partial_`), restricted to torch.optim."""

import inspect
import logging
import re

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf
from torch import nn

from gan_cli.errors import GanError
from gan_cli.trust import instantiation_targets

log = logging.getLogger(__name__)


def build_optimizer(node: DictConfig, module: nn.Module, key: str) -> torch.optim.Optimizer:
    """Instantiate the optimizer node for `module`'s parameters.

    Only classes of torch.optim are accepted, and only at the top of the node: a config can come
    from a checkpoint somebody else wrote, and `_target_` must not name arbitrary code. Nested
    nodes are passed as plain values (`_recursive_=False`), never instantiated.
    """
    target = str(node.get("_target_", ""))
    if not _is_torch_optimizer(target):
        raise GanError(f"{key}._target_={target!r} is not an optimizer of torch.optim (for example torch.optim.Adam)")
    nested = [name for name in instantiation_targets(node, f"{key}.") if name != f"{key}._target_"]
    if nested:
        raise GanError(f"{', '.join(nested)}: only the optimizer itself may be named by a _target_")
    if "fused" in node and "fused" not in inspect.signature(get_class(target)).parameters:
        # `fused` picks an implementation, not the algorithm: a class without one runs its own loop.
        log.warning(f"{target} has no fused implementation: {key}.fused is ignored")
        node = {name: value for name, value in OmegaConf.to_container(node, resolve=True).items() if name != "fused"}
    try:
        return instantiate(node, _recursive_=False)(module.parameters())
    except (InstantiationException, TypeError, ValueError) as err:
        raise GanError(f"cannot build the optimizer {key} ({target}): {' '.join(str(err).split())}") from err


def _is_torch_optimizer(target: str) -> bool:
    if not re.fullmatch(r"torch\.optim\.[A-Za-z]\w*", target):
        return False
    try:
        return issubclass(get_class(target), torch.optim.Optimizer)
    except (ImportError, ValueError, TypeError):
        return False
