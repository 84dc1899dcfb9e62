"""The trust check for configs that come from a file (a checkpoint, a stored command line): which
keys would make Hydra call a Python callable."""

from omegaconf import OmegaConf


def instantiation_targets(tree, prefix: str = "") -> list[str]:
    """Dotted keys of every `_target_` inside a config tree (dicts, lists or their OmegaConf forms).

    A `_target_` names a Python callable that Hydra would call: configs that come from a file must
    not smuggle one in where gan_cli does not expect it.
    """
    if OmegaConf.is_config(tree):
        tree = OmegaConf.to_container(tree, resolve=False)
    items = tree.items() if isinstance(tree, dict) else enumerate(tree) if isinstance(tree, list) else ()
    found = []
    for key, value in items:
        if key == "_target_":
            found.append(f"{prefix}{key}")
        found += instantiation_targets(value, f"{prefix}{key}.")
    return found
