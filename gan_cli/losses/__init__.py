"""What D and G minimise: an adversarial loss on logits, plus the terms the config turns on."""

from dataclasses import dataclass

from omegaconf import DictConfig

from gan_cli.errors import GanError
from gan_cli.losses.adversarial import HingeLoss, LeastSquaresLoss, MinimaxLoss, NonSaturatingLoss, WassersteinLoss
from gan_cli.losses.info import MutualInformationLoss
from gan_cli.models import code_spec

LOSSES = {
    "minimax": MinimaxLoss,
    "nonsaturating": NonSaturatingLoss,
    "lsgan": LeastSquaresLoss,
    # One critic loss under two names, so that logs, checkpoints and sweep folders tell the runs apart:
    # WGAN keeps the critic Lipschitz by weight clipping (loss.clip), WGAN-GP by the gradient penalty.
    "wgan": WassersteinLoss,
    "wgan_gp": WassersteinLoss,
    "hinge": HingeLoss,
}
# Loss-config keys that configure the training terms below rather than the adversarial loss itself.
TERM_KEYS = ("name", "gradient_penalty", "r1", "clip", "generator_objective")


@dataclass
class Objective:
    adversarial: object  # one of LOSSES: d_loss(real, fake), g_loss(fake), score(logits), critic
    gradient_penalty: float = 0.0  # lambda of WGAN-GP's penalty on interpolates
    r1: float = 0.0  # gamma of the R1 penalty on real data
    clip: float | None = None  # WGAN's weight clipping bound
    info: MutualInformationLoss | None = None  # InfoGAN's term, for models with codes
    matching_aware: bool = False  # real images under wrong labels are fakes too (Reed et al. 2016)
    feature_matching: bool = False  # G's loss is feature matching (Salimans et al. 2016), not the adversarial g_loss

    @property
    def penalizes_input_gradients(self) -> bool:
        return bool(self.gradient_penalty or self.r1)


def build_adversarial_loss(loss_cfg: DictConfig):
    """The adversarial loss alone (one of LOSSES) that the loss config names, with its options."""
    if loss_cfg.name not in LOSSES:
        raise GanError(f"loss.name={loss_cfg.name!r} is not a known loss; use one of {', '.join(LOSSES)}")
    return LOSSES[loss_cfg.name](**{key: value for key, value in loss_cfg.items() if key not in TERM_KEYS})


def build_objective(loss_cfg: DictConfig, model_cfg: DictConfig) -> Objective:
    codes = code_spec(model_cfg)
    return Objective(
        adversarial=build_adversarial_loss(loss_cfg),
        gradient_penalty=loss_cfg.gradient_penalty,
        r1=loss_cfg.r1,
        clip=loss_cfg.get("clip"),
        info=MutualInformationLoss(codes, model_cfg.codes.weight, model_cfg.codes.continuous_weight) if codes else None,
        matching_aware=model_cfg.matching_aware,
        feature_matching=loss_cfg.get("generator_objective") == "feature_matching",
    )
