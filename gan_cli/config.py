"""Structured-config schemas: the type of every key. The values and their meaning live in configs/*.yaml.

Each YAML option extends one of these dataclasses (see its `defaults:` list), so Hydra checks every key
and type while it composes the config: a misspelled key or `optimizer.lr=abc` fails at once, naming
the key. Checks a type cannot express (positive sizes, known names) are in `gan_cli.validation`.
"""

from dataclasses import dataclass, field
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# --- dataset group ---------------------------------------------------------------------------------


@dataclass
class MNISTConfig:
    name: str = MISSING
    root: str = MISSING
    split: str = MISSING
    download: bool = MISSING


@dataclass
class FakeDatasetConfig:
    name: str = MISSING
    num_samples: int = MISSING
    channels: int = MISSING
    image_size: int = MISSING
    num_classes: int = MISSING
    seed: int = MISSING


# --- model group -----------------------------------------------------------------------------------


@dataclass
class DCGANConfig:
    name: str = MISSING
    latent_dim: int = MISSING
    g_width: int = MISSING
    d_width: int = MISSING
    init: str = MISSING


# --- loss group ------------------------------------------------------------------------------------


@dataclass
class LossConfig:
    name: str = MISSING


# --- optimizer group: one node per network, instantiated by Hydra as a partial -------------------


@dataclass
class AdamNode:
    _target_: str = MISSING
    _partial_: bool = True
    _convert_: str = "all"
    lr: float = MISSING
    betas: List[float] = MISSING
    eps: float = MISSING
    weight_decay: float = MISSING


@dataclass
class AdamConfig:
    lr: float = MISSING
    generator: AdamNode = field(default_factory=AdamNode)
    discriminator: AdamNode = field(default_factory=AdamNode)


# --- gan-train -------------------------------------------------------------------------------------


@dataclass
class TrainLoopConfig:
    batch_size: int = MISSING
    steps: Optional[int] = MISSING
    epochs: float = MISSING
    d_steps: int = MISSING
    ema_decay: Optional[float] = MISSING
    precision: str = MISSING
    on_nan: str = MISSING
    max_skipped_steps: int = MISSING


@dataclass
class LogConfig:
    every: int = MISSING
    progress_bar: bool = MISSING


@dataclass
class SamplesConfig:
    every: int = MISSING
    n: int = MISSING


@dataclass
class CheckpointConfig:
    every: int = MISSING
    keep_every: Optional[int] = MISSING


@dataclass
class TrainConfig:
    dataset: Any = MISSING
    model: Any = MISSING
    loss: Any = MISSING
    optimizer: Any = MISSING
    train: TrainLoopConfig = field(default_factory=TrainLoopConfig)
    log: LogConfig = field(default_factory=LogConfig)
    samples: SamplesConfig = field(default_factory=SamplesConfig)
    checkpoint: CheckpointConfig = field(default_factory=CheckpointConfig)
    seed: int = MISSING
    device: str = MISSING
    resume: Optional[str] = MISSING


# --- gan-sample ------------------------------------------------------------------------------------


@dataclass
class SampleConfig:
    ckpt: Optional[str] = MISSING
    n: int = MISSING
    out: str = MISSING
    format: str = MISSING
    nrow: int = MISSING
    seed: int = MISSING
    ema: bool = MISSING
    batch_size: int = MISSING
    device: str = MISSING


def register_configs() -> None:
    """Store the schemas: primary ones at the top level, option schemas under the `schema/` group."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="sample_schema", node=SampleConfig)
    cs.store(group="schema/dataset", name="mnist", node=MNISTConfig)
    cs.store(group="schema/dataset", name="fake", node=FakeDatasetConfig)
    cs.store(group="schema/model", name="dcgan", node=DCGANConfig)
    cs.store(group="schema/loss", name="loss", node=LossConfig)
    cs.store(group="schema/optimizer", name="adam", node=AdamConfig)


register_configs()
