"""Games: one per family, each owning its networks, optimizers, state and step (see base.py).

GAMES is the registry: `model.game` (set by each model option, `adversarial` for the GAN families)
picks the class. A checkpoint's stored config names its game the same way, and nothing but the
registry's classes is ever built from a file.
"""

from omegaconf import DictConfig

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games.adversarial import AdversarialGame
from gan_cli.games.autoencoder import AutoencoderGame, VAEGame
from gan_cli.games.base import Game
from gan_cli.games.began import BEGANGame
from gan_cli.games.cogan import CoGANGame
from gan_cli.games.cyclegan import CycleGANGame
from gan_cli.games.stargan import StarGANGame
from gan_cli.games.vaegan import VAEGANGame

GAMES: dict[str, type[Game]] = {
    "adversarial": AdversarialGame,
    "began": BEGANGame,
    "vaegan": VAEGANGame,
    "autoencoder": AutoencoderGame,  # model=ae
    "vae": VAEGame,  # model=vae
    "cyclegan": CycleGANGame,
    "stargan": StarGANGame,
    "cogan": CoGANGame,
}
DEFAULT_GAME = "adversarial"  # what configs and checkpoints written before games had name


def game_class(model_cfg) -> type[Game]:
    """The game class a model config (or a checkpoint's stored model config) names."""
    name = model_cfg.get("game", DEFAULT_GAME)
    if name not in GAMES:
        raise GanError(f"model.game={name!r} is not a known game; use one of {', '.join(GAMES)}")
    return GAMES[name]


def build_game(cfg: DictConfig, shape: DataShape) -> Game:
    """The game `cfg` trains on data of `shape`, with its networks initialised on the CPU."""
    return game_class(cfg.model)(cfg, shape)
