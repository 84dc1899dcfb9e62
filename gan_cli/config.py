"""Structured-config schemas: the type of every key. The values and their meaning live in configs/*.yaml.

Each YAML option extends one of these dataclasses (see its `defaults:` list), so Hydra checks every key
and type while it composes the config: a misspelled key or `optimizer.lr=abc` fails at once, naming
the key. Checks a type cannot express (positive sizes, known names) are in `gan_cli.validation`.
"""

from dataclasses import dataclass, field, make_dataclass
from typing import Any, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

# --- dataset group ---------------------------------------------------------------------------------


@dataclass
class StandardDatasetConfig:
    """A benchmark read from dataset.root in torchvision's layout: MNIST, Fashion-MNIST, CIFAR-10."""

    name: str = MISSING
    root: str = MISSING
    split: str = MISSING
    download: bool = MISSING


@dataclass
class StackedMNISTConfig(StandardDatasetConfig):
    num_samples: int = MISSING
    seed: int = MISSING


@dataclass
class ImageFilesConfig:
    """What datasets of image files share: decoding, and where the decoded images live."""

    image_size: int = MISSING
    crop: Optional[int] = MISSING
    workers: int = MISSING
    memory_budget_mb: float = MISSING


@dataclass
class CelebAConfig(StandardDatasetConfig, ImageFilesConfig):
    attribute: Optional[str] = MISSING
    domains: Optional[List[str]] = MISSING  # attributes as translation domains (gan_cli.data.domains)


@dataclass
class ImageFolderConfig(ImageFilesConfig):
    name: str = MISSING
    path: Optional[str] = MISSING
    channels: int = MISSING


@dataclass
class MNISTDomainsConfig:
    """Domains derived from MNIST's digits (gan_cli.data.domains)."""

    name: str = MISSING
    root: str = MISSING
    download: bool = MISSING
    domains: List[str] = MISSING
    seed: int = MISSING


@dataclass
class UnpairedConfig:
    """Two domains of image files, in CycleGAN's folder layout (gan_cli.data.domains)."""

    name: str = MISSING
    path: Optional[str] = MISSING
    image_size: int = MISSING
    channels: int = MISSING
    crop: Optional[int] = MISSING
    workers: int = MISSING


@dataclass
class FakeDatasetConfig:
    name: str = MISSING
    num_samples: int = MISSING
    channels: int = MISSING
    image_size: int = MISSING
    num_classes: int = MISSING
    seed: int = MISSING


@dataclass
class ToyDatasetConfig:
    name: str = MISSING
    num_samples: int = MISSING
    seed: int = MISSING


@dataclass
class Gaussians1DConfig(ToyDatasetConfig):
    means: List[float] = MISSING
    stds: List[float] = MISSING


@dataclass
class Ring2DConfig(ToyDatasetConfig):
    modes: int = MISSING
    radius: float = MISSING
    std: float = MISSING


@dataclass
class Grid2DConfig(ToyDatasetConfig):
    grid_size: int = MISSING
    extent: float = MISSING
    std: float = MISSING


# --- model group: `name` is the family, `game` what trains it (gan_cli.games) ------------------------


@dataclass
class CodesConfig:
    categorical: List[int] = field(default_factory=list)
    continuous: int = 0
    weight: float = 1.0
    continuous_weight: float = 0.1


@dataclass
class FamilyConfig:
    """What every model option has: the family's name and its game."""

    name: str = MISSING
    game: str = "adversarial"


@dataclass
class ModelConfig(FamilyConfig):
    """The GAN families (the adversarial game): `arch` is the body; the optional features default to off."""

    arch: str = MISSING
    latent_dim: int = MISSING
    init: str = MISSING
    conditional: bool = False
    matching_aware: bool = False
    codes: CodesConfig = field(default_factory=CodesConfig)
    spectral_norm: bool = False
    minibatch_std: bool = False  # D's head also reads the batch's mean feature std (ProGAN)
    pack: int = 1  # D judges m samples at once (PacGAN)


@dataclass
class DCGANConfig(ModelConfig):
    g_width: int = MISSING
    d_width: int = MISSING
    d_norm: str = MISSING


@dataclass
class MLPConfig(ModelConfig):
    g_hidden: List[int] = MISSING
    d_hidden: List[int] = MISSING
    maxout_pieces: int = MISSING
    dropout: float = MISSING
    input_dropout: float = MISSING


@dataclass
class BEGANConfig(FamilyConfig):
    """BEGAN (the began game): the autoencoder D, the generator, and the equilibrium's constants."""

    latent_dim: int = MISSING
    hidden_dim: int = MISSING
    width: int = MISSING
    depth: int = MISSING
    init: str = MISSING
    gamma: float = MISSING
    lambda_k: float = MISSING
    k_init: float = MISSING
    lr_stall_steps: Optional[int] = MISSING


@dataclass
class AutoencoderConfig(FamilyConfig):
    """The encoder families without a discriminator (gan_cli.games.autoencoder): model=ae, model=vae."""

    latent_dim: int = MISSING
    width: int = MISSING  # channels of the encoder's first and the decoder's last stage, doubled at each lower resolution
    init: str = MISSING
    likelihood: str = MISSING  # bernoulli | gaussian
    gaussian_std: float = MISSING  # the Gaussian decoder's standard deviation (its start when learned)
    learn_std: bool = MISSING


@dataclass
class AEConfig(AutoencoderConfig):
    mixture_components: int = MISSING  # the fitted sampler: a Gaussian mixture over training codes
    mixture_codes: int = MISSING


@dataclass
class SecondStageConfig:
    steps: int = 0  # the run's last steps that train the second stage; 0: a one-stage VAE
    hidden: int = 256
    layers: int = 2


@dataclass
class VAEConfig(AutoencoderConfig):
    beta: float = MISSING
    second_stage: SecondStageConfig = field(default_factory=SecondStageConfig)


@dataclass
class VAEGANConfig(FamilyConfig):
    """VAE-GAN (the vaegan game): the VAE's encoder and decoder, a DCGAN discriminator, and the weights."""

    latent_dim: int = MISSING
    width: int = MISSING  # the encoder's and decoder's, as the VAE's
    init: str = MISSING
    d_width: int = MISSING
    d_norm: str = MISSING
    feature_layer: int = MISSING  # l: D's stage whose output measures reconstructions
    gamma: float = MISSING  # the decoder's weight of the feature reconstruction against the GAN term
    beta: float = MISSING  # the encoder's weight of the KL term against the feature reconstruction
    judge_reconstructions: bool = MISSING  # D also sees reconstructions as fakes (the paper)


@dataclass
class TranslationConfig(FamilyConfig):
    """The translation families (CycleGAN, StarGAN): ResNet generators and PatchGAN discriminators."""

    init: str = MISSING
    g_width: int = MISSING  # the generator's first stage; doubled at each downsampling
    g_blocks: int = MISSING  # residual blocks at the lowest resolution
    downsamplings: int = MISSING  # the generator's stride-2 stages (the image size must divide by 2**this)
    d_width: int = MISSING
    d_downsamplings: int = MISSING  # the PatchGAN's stride-2 stages
    d_norm: str = MISSING  # instance | none
    cycle_weight: float = MISSING  # lambda of the reconstruction (cycle) term


@dataclass
class CycleGANConfig(TranslationConfig):
    identity_weight: float = MISSING  # of lambda: the identity term's weight is identity_weight * cycle_weight
    pool_size: int = MISSING  # past fakes kept per domain for D (0: none)


@dataclass
class StarGANConfig(TranslationConfig):
    classification_weight: float = MISSING  # lambda_cls of the domain classification terms


@dataclass
class CoGANConfig(FamilyConfig):
    """CoGAN: a pair of DCGANs with tied layers (gan_cli.models.cogan)."""

    latent_dim: int = MISSING
    g_width: int = MISSING
    d_width: int = MISSING
    d_norm: str = MISSING  # batch | layer | none | auto (as model=dcgan's)
    init: str = MISSING
    shared_layers: int = MISSING  # G's first and D's last layers shared by the two domains (0: none)

# --- loss group: the regularizers are off unless a loss option turns them on -----------------------


@dataclass
class LossConfig:
    name: str = MISSING
    gradient_penalty: float = 0.0
    r1: float = 0.0
    generator_objective: str = "adversarial"  # adversarial (the loss's g_loss) | feature_matching


@dataclass
class CrossEntropyLossConfig(LossConfig):
    label_smoothing: float = 0.0


@dataclass
class LeastSquaresLossConfig(LossConfig):
    fake_target: float = MISSING
    real_target: float = MISSING
    generator_target: float = MISSING


@dataclass
class WassersteinLossConfig(LossConfig):
    clip: Optional[float] = MISSING


# --- optimizer group: one node per network, instantiated by Hydra as a partial -------------------


@dataclass
class OptimizerNode:
    _target_: str = MISSING
    _partial_: bool = True
    _convert_: str = "all"
    lr: float = MISSING
    weight_decay: float = MISSING


@dataclass
class AdamNode(OptimizerNode):
    betas: List[float] = MISSING
    eps: float = MISSING
    fused: bool = MISSING


@dataclass
class RMSpropNode(OptimizerNode):
    alpha: float = MISSING
    eps: float = MISSING
    momentum: float = MISSING


@dataclass
class SGDNode(OptimizerNode):
    momentum: float = MISSING


# The optimizer nodes a game may use, by the names games give their optimizers (gan_cli.games).
OPTIMIZER_NODES = ("generator", "discriminator", "encoder")


def optimizer_schema(node: type) -> type:
    """An optimizer option: a shared `lr` and one `node` for each of a game's optimizers (G and D may
    differ: TTUR)."""
    return make_dataclass(
        f"{node.__name__}Nodes",
        [("lr", float, MISSING)] + [(name, node, field(default_factory=node)) for name in OPTIMIZER_NODES],
    )


# --- gan-train -------------------------------------------------------------------------------------


@dataclass
class DivergenceConfig:
    """When a run counts as diverged without a NaN (gan_cli.training.divergence)."""

    steps: int = MISSING
    d_loss_below: float = MISSING
    fake_score_below: float = MISSING
    loss_above: float = MISSING


@dataclass
class TrainLoopConfig:
    batch_size: int = MISSING
    steps: Optional[int] = MISSING
    epochs: float = MISSING
    d_steps: int = MISSING
    unroll_steps: int = MISSING
    ema_decay: Optional[float] = MISSING
    lr_decay_from: Optional[float] = MISSING
    precision: str = MISSING
    channels_last: bool = MISSING
    compile: bool = MISSING
    compile_mode: str = MISSING
    replay_size: int = MISSING
    replay_fraction: float = MISSING
    on_nan: str = MISSING
    max_skipped_steps: int = MISSING
    on_divergence: str = MISSING
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)


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
class TrainEvalConfig:
    every: Optional[int] = MISSING
    metrics: List[str] = MISSING
    n: int = MISSING
    best: str = MISSING
    required: bool = MISSING
    data_root: Optional[str] = MISSING


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
    eval: TrainEvalConfig = field(default_factory=TrainEvalConfig)
    seed: int = MISSING
    device: str = MISSING
    resume: Optional[str] = MISSING


# --- gan-sample ------------------------------------------------------------------------------------


@dataclass
class SampleConfig:
    ckpt: Optional[str] = MISSING
    mode: str = MISSING
    images: Optional[str] = MISSING
    sampler: str = MISSING
    n: int = MISSING
    label: Optional[int] = MISSING
    labels: Optional[str] = MISSING
    steps: int = MISSING
    interpolation: str = MISSING
    out: str = MISSING
    format: str = MISSING
    nrow: int = MISSING
    seed: int = MISSING
    ema: bool = MISSING
    batch_size: int = MISSING
    device: str = MISSING
    terms: Optional[str] = MISSING


# --- gan-eval --------------------------------------------------------------------------------------


@dataclass
class EvalConfig:
    ckpt: Optional[str] = MISSING
    images: Optional[str] = MISSING
    metrics: Optional[List[str]] = MISSING
    features: str = MISSING
    inception_weights: Optional[str] = MISSING
    ref_images: Optional[str] = MISSING
    n: int = MISSING
    seed: int = MISSING
    ema: bool = MISSING
    sampler: str = MISSING
    out: Optional[str] = MISSING
    batch_size: int = MISSING
    data_root: str = MISSING
    device: str = MISSING
    labels_per_class: List[int] = MISSING


# --- gan-translate ---------------------------------------------------------------------------------

# `from` (the images' domain) is a Python keyword, which no class body can name: the schema is made
# from its annotations instead (dataclass() takes any name there; only a generated __init__, __repr__
# or __eq__ would spell it in code, and the schema needs none of them).
TRANSLATE_KEYS = {
    "ckpt": Optional[str],
    "images": str,
    "to": Optional[str],
    "from": Optional[str],
    "n": int,
    "out": str,
    "nrow": int,
    "ema": bool,
    "batch_size": int,
    "device": str,
    "seed": int,
    "data_root": Optional[str],
}
TranslateConfig = dataclass(init=False, repr=False, eq=False)(
    type("TranslateConfig", (), {"__annotations__": TRANSLATE_KEYS, **dict.fromkeys(TRANSLATE_KEYS, MISSING)})
)


def register_configs() -> None:
    """Store the schemas: primary ones at the top level, option schemas under the `schema/` group."""
    cs = ConfigStore.instance()
    cs.store(name="train_schema", node=TrainConfig)
    cs.store(name="sample_schema", node=SampleConfig)
    cs.store(name="eval_schema", node=EvalConfig)
    cs.store(name="translate_schema", node=TranslateConfig)
    for name in ("mnist", "fashion_mnist", "cifar10"):
        cs.store(group="schema/dataset", name=name, node=StandardDatasetConfig)
    cs.store(group="schema/dataset", name="stacked_mnist", node=StackedMNISTConfig)
    cs.store(group="schema/dataset", name="celeba", node=CelebAConfig)
    cs.store(group="schema/dataset", name="image_folder", node=ImageFolderConfig)
    cs.store(group="schema/dataset", name="mnist_domains", node=MNISTDomainsConfig)
    cs.store(group="schema/dataset", name="unpaired", node=UnpairedConfig)
    cs.store(group="schema/dataset", name="fake", node=FakeDatasetConfig)
    cs.store(group="schema/dataset", name="gaussians_1d", node=Gaussians1DConfig)
    cs.store(group="schema/dataset", name="ring_2d", node=Ring2DConfig)
    cs.store(group="schema/dataset", name="grid_2d", node=Grid2DConfig)
    cs.store(group="schema/model", name="dcgan", node=DCGANConfig)
    cs.store(group="schema/model", name="mlp", node=MLPConfig)
    cs.store(group="schema/model", name="began", node=BEGANConfig)
    cs.store(group="schema/model", name="vaegan", node=VAEGANConfig)
    cs.store(group="schema/model", name="ae", node=AEConfig)
    cs.store(group="schema/model", name="vae", node=VAEConfig)
    cs.store(group="schema/model", name="cyclegan", node=CycleGANConfig)
    cs.store(group="schema/model", name="stargan", node=StarGANConfig)
    cs.store(group="schema/model", name="cogan", node=CoGANConfig)
    cs.store(group="schema/loss", name="cross_entropy", node=CrossEntropyLossConfig)
    cs.store(group="schema/loss", name="least_squares", node=LeastSquaresLossConfig)
    cs.store(group="schema/loss", name="wasserstein", node=WassersteinLossConfig)
    cs.store(group="schema/loss", name="plain", node=LossConfig)
    for name, node in (("adam", AdamNode), ("rmsprop", RMSpropNode), ("sgd", SGDNode)):
        cs.store(group="schema/optimizer", name=name, node=optimizer_schema(node))


register_configs()
