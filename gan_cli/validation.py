"""Checks a schema's types cannot express: value ranges, known names, and combinations that cannot
work together. Every problem is reported at once, each naming its key and what to use instead.
"""

import math

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gan_cli.data import is_vector_dataset
from gan_cli.data.celeba import check_domain_keys
from gan_cli.data.domain_transforms import check_domains
from gan_cli.data.toy import MIXTURES, toy_mixture
from gan_cli.device import PRECISIONS
from gan_cli.errors import GanError
from gan_cli.games import GAMES
from gan_cli.losses import LOSSES
from gan_cli.losses.feature_matching import GENERATOR_OBJECTIVES
from gan_cli.losses.likelihood import LIKELIHOODS
from gan_cli.metrics.pairs import HIGHER_IS_BETTER as PAIR_METRICS
from gan_cli.metrics.suite import evaluation_problems
from gan_cli.metrics.translation import HIGHER_IS_BETTER as TRANSLATION_METRICS
from gan_cli.models import ARCHITECTURES
from gan_cli.models.cogan import check_shared_layers
from gan_cli.models.dcgan import D_NORMS, resolution_stages
from gan_cli.models.init import INIT_SCHEMES
from gan_cli.training.compiled import COMPILE_MODES
from gan_cli.training.divergence import POLICIES as DIVERGENCE_POLICIES

# What the evaluation of translations between domains the domain evaluator cannot read (dataset=unpaired,
# dataset=celeba's attributes) measures: the round trip alone (gan_cli.metrics.translation.cycle_error).
UNSCORED_METRICS = ("cycle_l1", "cycle_l1_probe")
BATCH_NORM_PENALTY = ("a penalty on D's input gradients (loss.gradient_penalty, loss.r1) is per sample and batch "
                      "norm mixes samples; set model.d_norm=layer, none or auto")

# Keys that must be > 0 (and finite) where present (a null optional key is fine).
POSITIVE_KEYS = (
    "train.batch_size",
    "train.steps",
    "train.epochs",
    "train.d_steps",
    "log.every",
    "samples.every",
    "samples.n",
    "checkpoint.every",
    "checkpoint.keep_every",
    "eval.every",
    "optimizer.lr",
    "optimizer.generator.lr",
    "optimizer.discriminator.lr",
    "model.latent_dim",
    "model.pack",
    "model.g_width",
    "model.d_width",
    "model.hidden_dim",
    "model.width",
    "model.depth",
    "model.gamma",
    "model.lr_stall_steps",
    "model.feature_layer",
    "model.gaussian_std",
    "model.mixture_components",
    "model.mixture_codes",
    "model.second_stage.hidden",
    "model.second_stage.layers",
    "loss.clip",
    "dataset.num_samples",
    "dataset.channels",
    "dataset.image_size",
    "dataset.crop",
    "dataset.modes",
    "dataset.radius",
    "dataset.std",
    "dataset.grid_size",
    "dataset.extent",
    "train.divergence.steps",
    "train.divergence.loss_above",
)
NON_NEGATIVE_KEYS = (
    "train.replay_size",
    "train.unroll_steps",
    "train.max_skipped_steps",
    "loss.gradient_penalty",
    "loss.r1",
    "model.codes.continuous",
    "model.codes.weight",
    "model.codes.continuous_weight",
    "model.lambda_k",
    "model.beta",
    "model.second_stage.steps",
    "dataset.num_classes",
    "dataset.workers",
    "dataset.memory_budget_mb",
    "train.divergence.d_loss_below",
)
# Probabilities and fractions in [0, 1]: key -> whether 1 itself is allowed
UNIT_INTERVAL_KEYS = {
    "train.ema_decay": False,
    "train.lr_decay_from": False,
    "train.replay_fraction": True,
    "loss.label_smoothing": False,
    "model.dropout": False,
    "model.input_dropout": False,
    "model.k_init": True,
    "train.divergence.fake_score_below": True,
}


def check_train_config(cfg: DictConfig) -> None:
    """Raise GanError naming every key of a gan-train config whose value cannot work."""
    _check_resolvable(cfg)
    problems = _value_problems(cfg) + _name_problems(cfg) + _game_problems(cfg)
    if _translates(cfg):  # every translation metric is measured; eval.best picks one
        if cfg.eval.best not in TRANSLATION_METRICS:
            problems.append(f"eval.best={cfg.eval.best!r}: a translation model's evaluations rank by one of "
                            f"{', '.join(TRANSLATION_METRICS)} (for example eval.best=label_preservation)")
    elif _draws_pairs(cfg):  # every pair metric is measured; eval.best picks one
        if cfg.eval.best not in PAIR_METRICS:
            problems.append(f"eval.best={cfg.eval.best!r}: a pair generator's evaluations rank by one of "
                            f"{', '.join(PAIR_METRICS)} (for example eval.best=pair_agreement)")
    else:
        problems += evaluation_problems(cfg.eval.metrics, cfg.eval.n, cfg.eval.best, "eval.")
    if problems:
        raise GanError("invalid config: " + "; ".join(problems))


def _translates(cfg: DictConfig) -> bool:
    """Whether the model is a translation family (gan_cli.games.translation)."""
    return getattr(GAMES.get(_get(cfg, "model.game")), "translates", False)


def _draws_pairs(cfg: DictConfig) -> bool:
    """Whether the model draws pairs of images in two domains (CoGAN)."""
    return getattr(GAMES.get(_get(cfg, "model.game")), "draws_pairs", False)


def _get(cfg: DictConfig, key: str):
    return OmegaConf.select(cfg, key, default=None)


def _check_resolvable(cfg: DictConfig) -> None:
    """Every interpolation (`${...}`) outside Hydra's own settings must resolve to a value of its key's type."""
    for key in cfg:
        if key != "hydra":
            try:
                value = cfg[key]  # resolves an interpolation at the top level
                if OmegaConf.is_config(value):
                    OmegaConf.to_container(value, resolve=True)
            except OmegaConfBaseException as err:
                raise GanError(f"invalid config: {err.full_key}: {str(err).splitlines()[0]}") from None


def _number(cfg: DictConfig, key: str, problems: list[str]) -> int | float | None:
    """The value at `key` if it is a number, None if absent or null (a problem is noted if it is something else)."""
    value = _get(cfg, key)
    if value is None or (isinstance(value, (int, float)) and not isinstance(value, bool)):
        return value
    problems.append(f"{key}={value} must be a number")
    return None


def _value_problems(cfg: DictConfig) -> list[str]:
    problems = []
    for key in POSITIVE_KEYS:
        value = _number(cfg, key, problems)
        if value is not None and not 0 < value < math.inf:
            problems.append(f"{key}={value} must be positive" + ("" if math.isfinite(value) else " and finite"))
    for key in NON_NEGATIVE_KEYS:
        value = _number(cfg, key, problems)
        if value is not None and not 0 <= value < math.inf:
            problems.append(f"{key}={value} must not be negative" + ("" if math.isfinite(value) else " or infinite"))
    for key, closed in UNIT_INTERVAL_KEYS.items():
        value = _number(cfg, key, problems)
        if value is not None and not (0 <= value <= 1 if closed else 0 <= value < 1):
            problems.append(f"{key}={value} must be in [0, 1{']' if closed else ')'}")
    pieces = _get(cfg, "model.maxout_pieces")
    if pieces is not None and pieces < 2:
        problems.append(f"model.maxout_pieces={pieces} must be at least 2 (a maxout unit takes the max of its pieces)")
    for k in _get(cfg, "model.codes.categorical") or []:
        if k < 2:
            problems.append(f"model.codes.categorical has a code with {k} values; each needs at least 2")
    return problems + _dataset_problems(cfg.dataset)


def _dataset_problems(dataset: DictConfig) -> list[str]:
    problems = []
    if dataset.name in ("image_folder", "unpaired") and dataset.channels not in (1, 3):
        problems.append(f"dataset.channels={dataset.channels} must be 3 (RGB) or 1 (grayscale)")
    if dataset.name == "mnist_domains":
        try:
            check_domains(dataset.domains)
        except GanError as err:
            problems.append(str(err))
    if dataset.name == "celeba":  # the names themselves are checked against the attribute file (check_dataset_files)
        try:
            check_domain_keys(dataset.attribute, dataset.domains)
        except GanError as err:
            problems.append(str(err))
    if dataset.name == "gaussians_1d" and not all(0 < std < math.inf for std in dataset.stds):
        problems.append(f"dataset.stds={list(dataset.stds)} must all be positive and finite")
    if dataset.name in MIXTURES and not problems:
        try:
            reach = toy_mixture(dataset).reach()
        except GanError as err:
            return [str(err)]
        except OmegaConfBaseException as err:  # dataset.name set to a toy mixture on another dataset's keys
            return [f"dataset.name={dataset.name}: this dataset config lacks the mixture's keys ({err.full_key}); use dataset={dataset.name}"]
        if not reach < 1:  # also catches nan
            problems.append(
                f"dataset={dataset.name}: its modes reach {reach:.3g} (3 standard deviations out), but the "
                "generator's tanh output stays inside (-1, 1); move the modes in or narrow them"
            )
    return problems


def _name_problems(cfg: DictConfig) -> list[str]:
    known = {
        "train.precision": PRECISIONS,
        "train.compile_mode": COMPILE_MODES,
        "train.on_nan": ("stop", "skip"),
        "train.on_divergence": DIVERGENCE_POLICIES,
        "model.arch": tuple(ARCHITECTURES),
        "model.init": tuple(INIT_SCHEMES),
        "model.d_norm": ("auto", *D_NORMS),
        "loss.name": tuple(LOSSES),
        "loss.generator_objective": GENERATOR_OBJECTIVES,
        "model.likelihood": LIKELIHOODS,
    }
    if _translates(cfg):
        del known["model.d_norm"]  # the PatchGANs' own choice: see _translation_problems
    return [
        f"{key}={_get(cfg, key)!r} must be one of {', '.join(names)}"
        for key, names in known.items()
        if _get(cfg, key) is not None and _get(cfg, key) not in names
    ]


def _game_problems(cfg: DictConfig) -> list[str]:
    """Keys of the training config that the model's game does not play by, and for the GAN families
    the combinations of options that cannot work."""
    game = GAMES.get(cfg.model.game)
    if game is None:
        return [f"model.game={cfg.model.game!r} must be one of {', '.join(GAMES)}"]
    if cfg.model.name not in game.families:
        return [f"model.name={cfg.model.name!r} must be one of {', '.join(game.families)} (the families of "
                f"model.game={cfg.model.game})"]
    if game.encoder is not None and is_vector_dataset(cfg.dataset.name):
        return [f"model={cfg.model.name} encodes and decodes images, and dataset={cfg.dataset.name} holds points: "
                "train it on image data (dataset=mnist, ...)"]
    family = f"model={cfg.model.name}"
    if cfg.model.game == "adversarial":
        problems = _combination_problems(cfg)
    else:
        problems = _encoder_problems(cfg) if game.encoder is not None else _image_problems(cfg, family)
    if cfg.model.game == "vaegan":
        problems += _vaegan_problems(cfg)
    if _translates(cfg):
        problems += _translation_problems(cfg)
    if _draws_pairs(cfg):
        problems += _pair_problems(cfg)
    if _get(cfg, "model.lr_stall_steps") and _get(cfg, "train.lr_decay_from") is not None:
        problems.append("train.lr_decay_from and model.lr_stall_steps both set the learning rates: keep one "
                        "(train.lr_decay_from=null, or model.lr_stall_steps=null)")
    if not game.uses_loss and any(o.lstrip("+~").split("=")[0].split(".")[0] == "loss" for o in _task_overrides(cfg)):
        problems.append(f"loss: {family} has no adversarial loss to choose (its game, {cfg.model.game}, sets its own "
                        "objective); drop loss= and loss.* from the command line")
    if not game.uses_d_steps:
        for key, neutral in (("train.d_steps", 1), ("train.replay_size", 0), ("train.unroll_steps", 0)):
            if _get(cfg, key) != neutral:
                problems.append(f"{key}={_get(cfg, key)}: {family} has no discriminator updates to repeat, unroll or "
                                f"replay fakes to; leave it at {neutral}")
    return problems


def _image_problems(cfg: DictConfig, family: str) -> list[str]:
    """The games other than the adversarial one have convolutional networks only: images whose size
    the DCGAN's stages can build."""
    if is_vector_dataset(cfg.dataset.name):
        return [f"dataset={cfg.dataset.name} holds points, not images, and {family} is convolutional: "
                "use an image dataset (mnist, fashion_mnist, cifar10, celeba, image_folder, fake)"]
    return _image_size_problems(cfg)


def _encoder_problems(cfg: DictConfig) -> list[str]:
    problems = []
    second_stage, steps = _get(cfg, "model.second_stage.steps"), _get(cfg, "train.steps")
    if second_stage and isinstance(steps, int) and second_stage >= steps:
        problems.append(f"model.second_stage.steps={second_stage} must be below train.steps={steps}: the second "
                        "stage trains in the run's last steps, after the first stage")
    if "reconstruction" in (_get(cfg, "eval.metrics") or []):
        problems.append("eval.metrics: reconstruction is scored by gan-eval (metrics=[reconstruction]), not during training")
    return problems + _image_size_problems(cfg)


def _vaegan_problems(cfg: DictConfig) -> list[str]:
    """VAE-GAN's D plays a plain adversarial loss, and its feature layer must exist."""
    problems = _plain_loss_problems(cfg, "decoder", "D's features of reconstructions against the GAN term")
    layer, image_size = _get(cfg, "model.feature_layer"), _get(cfg, "dataset.image_size") or 28
    try:
        layers = resolution_stages(image_size)[1]
    except GanError:  # reported by _image_size_problems
        return problems
    if isinstance(layer, int) and not 1 <= layer <= layers:
        problems.append(f"model.feature_layer={layer} must be between 1 and {layers} (D's stride-2 stages at image size {image_size})")
    return problems


def _plain_loss_problems(cfg: DictConfig, generator: str, objective: str) -> list[str]:
    """Games whose D plays the adversarial loss alone (no critic, penalty or clipping), and whose
    `generator` network has its own `objective` besides it."""
    problems, loss, family = [], cfg.loss, cfg.model.name
    if loss.gradient_penalty or loss.r1 or _get(cfg, "loss.clip") is not None or getattr(LOSSES.get(loss.name), "critic", False):
        problems.append(f"loss={loss.name}: model={family} trains its D without weight clipping or gradient penalties; "
                        "use loss=nonsaturating, minimax, lsgan or hinge")
    if loss.generator_objective != "adversarial":
        problems.append(f"loss.generator_objective={loss.generator_objective}: model={family}'s {generator} has its own "
                        f"objective ({objective}); leave it at adversarial")
    return problems


def _translation_problems(cfg: DictConfig) -> list[str]:
    """Translation families need data in domains, an eval.best their evaluation measures, and images
    their stride-2 stages divide."""
    family = cfg.model.name
    if _get(cfg, "dataset.domains") is None and cfg.dataset.name != "unpaired":  # unpaired's domains: A and B
        return [f"dataset={cfg.dataset.name}: model={family} translates between domains; use dataset=mnist_domains "
                "dataset.domains=[plain, invert] (or dataset=unpaired dataset.path=<folder with trainA/ trainB/>, or "
                "dataset=celeba dataset.domains=[Black_Hair, Blond_Hair])"]
    problems = []
    best = _get(cfg, "eval.best")
    unscored = cfg.dataset.name != "mnist_domains" and _get(cfg, "eval.every") is not None
    if unscored and best in TRANSLATION_METRICS and best not in UNSCORED_METRICS:  # an unknown one is named in check_train_config
        problems.append(f"eval.best={best}: the domains of dataset={cfg.dataset.name} are measured by the cycle metrics "
                        "alone (the domain evaluator reads MNIST's derived domains, and there are no true pairs); use "
                        f"eval.best={' or eval.best='.join(UNSCORED_METRICS)}, or eval.every=null")
    size, stages = _get(cfg, "dataset.image_size") or 28, _get(cfg, "model.downsamplings")
    if isinstance(stages, int) and isinstance(size, int) and (stages < 0 or size % 2**stages):
        problems.append(f"model.downsamplings={stages}: the image size {size} must divide by 2**{stages}; use a "
                        f"smaller model.downsamplings or a dataset.image_size that divides")
    for key, neutral in (("train.replay_size", 0), ("train.unroll_steps", 0), ("loss.generator_objective", "adversarial")):
        if _get(cfg, key) != neutral:
            problems.append(f"{key}={_get(cfg, key)} is for the GAN families; model={family} does not use it: leave it at {neutral}"
                            + (" (CycleGAN's pool of past fakes is model.pool_size)" if key == "train.replay_size" else ""))
    if _get(cfg, "model.d_norm") not in ("instance", "none"):
        problems.append(f"model.d_norm={_get(cfg, 'model.d_norm')!r} must be instance or none")
    return problems


def _pair_problems(cfg: DictConfig) -> list[str]:
    """A pair generator learns two domains of dataset=mnist_domains, shares layers it has, and plays the
    GAN loss alone (penalties per sample, so not beside batch norm)."""
    family, domains = cfg.model.name, _get(cfg, "dataset.domains")
    problems = []
    if cfg.dataset.name != "mnist_domains" or domains is None or len(domains) != 2:
        problems.append(f"dataset={cfg.dataset.name}: model={family} learns two domains together; use "
                        "dataset=mnist_domains dataset.domains=[plain, edge] (two of its domains)")
    shared, size = _get(cfg, "model.shared_layers"), _get(cfg, "dataset.image_size") or 28
    try:
        check_shared_layers(shared, size)
    except GanError as err:
        problems.append(str(err))
    if (cfg.loss.gradient_penalty or cfg.loss.r1) and _get(cfg, "model.d_norm") == "batch":
        problems.append(BATCH_NORM_PENALTY)
    if cfg.loss.generator_objective != "adversarial":
        problems.append(f"loss.generator_objective={cfg.loss.generator_objective} is for the GAN families; "
                        f"model={family} plays the adversarial loss: leave it at adversarial")
    return problems

def _image_size_problems(cfg: DictConfig) -> list[str]:
    """A dataset.image_size the DCGAN-shaped networks cannot be built for."""
    image_size = _get(cfg, "dataset.image_size")
    if isinstance(image_size, int) and image_size > 0:
        try:
            resolution_stages(image_size)
        except GanError as err:
            return [f"dataset.image_size={image_size}: {err}"]
    return []


def _task_overrides(cfg: DictConfig) -> list[str]:
    """The command line's overrides, where the config carries Hydra's node (gan-train's own)."""
    return list(OmegaConf.select(cfg, "hydra.overrides.task", default=None) or [])


def _combination_problems(cfg: DictConfig) -> list[str]:
    model, loss = cfg.model, cfg.loss
    problems = []
    has_codes = bool(model.codes.categorical) or model.codes.continuous > 0
    if model.name == "infogan" and not has_codes:
        problems.append("model=infogan needs latent codes (model.codes.categorical or model.codes.continuous); "
                        "without codes it is a DCGAN: use model=dcgan")
    if has_codes and model.name != "infogan":
        problems.append(f"model.codes are InfoGAN's: use model=infogan instead of adding codes to model.name={model.name}")
    if model.conditional != (model.name == "cgan"):
        problems.append("label conditioning is the conditional GAN's: use model=cgan or model=cgan_mlp "
                        f"(model.name={model.name} with model.conditional={model.conditional})")
    if model.conditional and _get(cfg, "dataset.num_classes") == 0:
        problems.append("a conditional model needs labels, and this dataset has none (dataset.num_classes=0): "
                        "use a labelled dataset or an unconditional model such as model=dcgan")
    if model.matching_aware and not model.conditional:
        problems.append("model.matching_aware=true needs a conditional model (model=cgan)")
    clip, penalized = _get(cfg, "loss.clip"), bool(loss.gradient_penalty or loss.r1)
    critic = getattr(LOSSES.get(loss.name), "critic", False)  # an unknown name is reported by _name_problems
    if clip is not None and loss.gradient_penalty:
        problems.append("weight clipping (loss.clip) and a gradient penalty are two ways to the same Lipschitz "
                        "constraint; use loss=wgan for clipping or loss=wgan_gp for the penalty")
    # loss=wgan and loss=wgan_gp share one critic loss and differ only in their Lipschitz constraint:
    # the name must say which one a run uses, or logs and checkpoints would mislabel it.
    if loss.name == "wgan_gp" and not loss.gradient_penalty:
        problems.append("loss=wgan_gp is the Wasserstein loss with a gradient penalty, and loss.gradient_penalty=0 "
                        "turns the penalty off: set it above 0 (the paper's 10) or use loss=wgan")
    elif loss.name == "wgan" and loss.gradient_penalty and clip is None:
        problems.append("a Wasserstein critic with a gradient penalty instead of weight clipping is WGAN-GP: "
                        "use loss=wgan_gp")
    elif critic and clip is None and not loss.gradient_penalty and not model.spectral_norm:
        problems.append("a Wasserstein critic needs a Lipschitz constraint: loss.clip, loss.gradient_penalty "
                        "or model.spectral_norm=true (loss=wgan and loss=wgan_gp set one)")
    if penalized and _get(cfg, "model.d_norm") == "batch":
        problems.append(BATCH_NORM_PENALTY)
    problems += _packing_problems(cfg)
    if model.arch == "dcgan" and is_vector_dataset(cfg.dataset.name):
        problems.append(
            f"dataset={cfg.dataset.name} holds points, not images, and model.arch=dcgan is convolutional: use "
            f"model=mlp (experiment=gan_{cfg.dataset.name} is a tested recipe)"
        )
    if model.arch == "dcgan":
        problems += _image_size_problems(cfg)
    return problems


def _packing_problems(cfg: DictConfig) -> list[str]:
    """PacGAN's D judges m-tuples: the batches must split into them, and each sample must not need
    a judgement of its own."""
    pack, batch_size = _get(cfg, "model.pack"), _get(cfg, "train.batch_size")
    if not isinstance(pack, int) or pack <= 1:  # a non-positive m is reported with the positive keys
        return []
    problems = []
    if isinstance(batch_size, int) and batch_size > 0 and batch_size % pack:
        problems.append(f"model.pack={pack} must divide train.batch_size={batch_size}: D judges the real and the fake "
                        f"batches in {pack}-tuples; use a batch size that is a multiple of {pack}")
    if cfg.model.name == "infogan":
        problems.append(f"model.pack={pack} with model=infogan: InfoGAN's Q head reads each sample's codes back, and a "
                        "packed D sees m samples as one; use model.pack=1")
    return problems

