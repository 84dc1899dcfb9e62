"""BEGAN (model=began): the equilibrium's closed forms, the game's step, the learning-rate halving,
and real runs (fake data and MNIST) that resume bit for bit, sample and evaluate from the CLI."""

import pytest
import torch
from omegaconf import OmegaConf, open_dict
from torch import nn

from gan_cli.errors import GanError
from gan_cli.games.began import (
    BEGANGame,
    LearningRateHalving,
    convergence_measure,
    equilibrium_update,
    reconstruction_error,
)
from gan_cli.training import distributed
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import build_training
from gan_cli.validation import check_train_config
from tests.helpers import (
    TINY,
    assert_same_training,
    assert_user_error,
    compose_train,
    resume_tiny,
    run_cli,
    train_checked,
)

TINY_BEGAN = ["model=began", "model.width=8", "model.hidden_dim=8", "model.latent_dim=8"]
FAST_BEGAN = ["debug=smoke", *TINY_BEGAN, "log.progress_bar=false"]


def train_began(run_dir, overrides=()):
    train_checked(run_dir, TINY + TINY_BEGAN + list(overrides))


# --- closed forms --------------------------------------------------------------------------------


def test_reconstruction_error_is_the_mean_absolute_error_per_image():
    x = torch.tensor([[[[0.5, -1.0], [0.0, 0.5]]], [[[1.0, 1.0], [1.0, 1.0]]]])  # (2, 1, 2, 2)
    assert reconstruction_error(nn.Identity(), x).tolist() == [0.0, 0.0]
    zero = lambda v: torch.zeros_like(v)  # noqa: E731  (an autoencoder that outputs black)
    assert reconstruction_error(zero, x).tolist() == pytest.approx([0.5, 1.0])


def test_the_k_update_follows_the_balance_and_is_clipped_to_0_1():
    k, real, fake = torch.tensor(0.2), torch.tensor(0.4), torch.tensor(0.1)
    # gamma L(x) - L(G(z)) = 0.5 * 0.4 - 0.1 = 0.1: k grows by lambda_k * 0.1
    assert equilibrium_update(k, real, fake, 0.5, 0.01).item() == pytest.approx(0.201)
    assert equilibrium_update(k, real, torch.tensor(0.3), 0.5, 0.01).item() == pytest.approx(0.199)
    assert equilibrium_update(torch.tensor(0.0), real, torch.tensor(0.9), 0.5, 0.1).item() == 0.0  # clipped at 0
    assert equilibrium_update(torch.tensor(0.99), real, torch.tensor(0.0), 0.5, 1.0).item() == 1.0  # clipped at 1


def test_a_non_finite_step_leaves_k_as_it_was():
    k = torch.tensor(0.3)
    assert equilibrium_update(k, torch.tensor(float("nan")), torch.tensor(0.1), 0.5, 0.01).item() == pytest.approx(0.3)
    assert equilibrium_update(k, torch.tensor(0.2), torch.tensor(float("inf")), 0.5, 0.01).item() == pytest.approx(0.3)


def test_the_convergence_measure_is_the_real_error_plus_the_imbalance():
    assert convergence_measure(torch.tensor(0.4), torch.tensor(0.1), 0.5).item() == pytest.approx(0.4 + 0.1)
    assert convergence_measure(torch.tensor(0.4), torch.tensor(0.5), 0.5).item() == pytest.approx(0.4 + 0.3)
    assert convergence_measure(torch.tensor(0.4), torch.tensor(0.2), 0.5).item() == pytest.approx(0.4)  # in balance


def test_a_step_is_the_papers_update():
    """One step's scalars: loss/D = L(x) - k_t L(G(z)), and k_{t+1} from the same L(x) and L(G(z))."""
    cfg = compose_train(TINY + TINY_BEGAN + ["train.precision=fp32", "model.k_init=0.25", "model.lambda_k=0.5"])
    training = build_training(cfg, torch.device("cpu"), distributed.current())
    game = training.state.game
    assert isinstance(game, BEGANGame) and game.k.item() == 0.25
    scalars = {name: value.item() for name, value in training.step().items()}
    real, fake = scalars["began/L(x)"], scalars["began/L(G(z))"]
    assert scalars["loss/D"] == pytest.approx(real - 0.25 * fake, rel=1e-6)
    expected_k = min(max(0.25 + 0.5 * (cfg.model.gamma * real - fake), 0.0), 1.0)
    assert scalars["began/k_t"] == pytest.approx(expected_k, rel=1e-6) and game.k.item() == scalars["began/k_t"]
    assert scalars["began/M_global"] == pytest.approx(real + abs(cfg.model.gamma * real - fake), rel=1e-6)
    assert 0 < real < 2 and 0 < fake < 2


# --- learning-rate halving -----------------------------------------------------------------------


class FakeUpdates:
    def __init__(self, lr: float):
        parameter = nn.Parameter(torch.zeros(1))
        self.optimizers = {name: torch.optim.Adam([parameter], lr=lr) for name in ("discriminator", "generator")}

    def lrs(self) -> list[float]:
        return [optimizer.param_groups[0]["lr"] for optimizer in self.optimizers.values()]


def test_learning_rates_halve_when_m_global_stalls():
    updates, halving = FakeUpdates(1e-3), LearningRateHalving(window=2)
    lrs = []
    for m in [1.0, 0.8, 0.6, 0.6, 0.9, 0.9, 0.5, 0.5, 0.55, 0.55]:  # window means 0.9, 0.6, 0.9, 0.5, 0.55
        halving.observe(torch.tensor(m), updates)
        lrs.append(updates.lrs()[0])
    assert lrs == [1e-3] * 5 + [5e-4] * 4 + [2.5e-4]  # halved after the 3rd window (0.9 >= 0.6) and the 5th (0.55 >= 0.5)
    assert updates.lrs()[0] == updates.lrs()[1] and halving.halvings == 2


def test_learning_rate_halvings_survive_a_resume():
    updates, halving = FakeUpdates(1e-3), LearningRateHalving(window=1)
    for m in [1.0, 2.0, 3.0]:
        halving.observe(torch.tensor(m), updates)
    assert updates.lrs()[0] == 2.5e-4
    resumed_updates, resumed = FakeUpdates(1e-3), LearningRateHalving(window=1)  # the config's lr again
    resumed.load_state_dict(halving.state_dict(), torch.device("cpu"))
    resumed.observe(torch.tensor(0.5), resumed_updates)  # an improvement: no new halving
    assert resumed_updates.lrs()[0] == 2.5e-4 and resumed.best == 0.5


# --- runs ----------------------------------------------------------------------------------------


def test_began_trains_and_resumes_bit_identically_with_k_t(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    extra = ["model.k_init=0.3", "model.lambda_k=0.05", "model.lr_stall_steps=2"]
    train_began(straight, extra)
    train_began(split, extra + ["train.steps=3"])
    assert load_checkpoint(split)["step"] == 3
    resume_tiny(split, ["train.steps=6"])
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a["step"] == 6
    assert_same_training(a, b)
    k = a["game"]["k"]
    assert 0 < k.item() < 1 and k.item() != 0.3  # it moved
    assert torch.equal(k, b["game"]["k"])
    halving_a, halving_b = a["game"]["lr_halving"], b["game"]["lr_halving"]
    assert torch.equal(halving_a.pop("total"), halving_b.pop("total")) and halving_a == halving_b
    assert a["optimizers"]["generator"]["param_groups"][0]["lr"] == b["optimizers"]["generator"]["param_groups"][0]["lr"]


def test_began_preset_trains_on_mnist(tmp_path, mnist_root):
    overrides = ["experiment=began_mnist", f"dataset.root={mnist_root}", "train.steps=3", "log.every=1", "samples.every=3",
                 "checkpoint.every=3", "eval.every=null", "log.progress_bar=false"]
    train_checked(tmp_path, overrides)
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint["step"] == 3 and checkpoint["config"]["model"]["game"] == "began"
    assert set(checkpoint["networks"]) == {"G", "D"} and set(checkpoint["ema"]) == {"G"}


def test_the_preset_carries_its_settings():
    cfg = compose_train(["experiment=began_mnist"])
    assert (cfg.model.name, cfg.model.game, cfg.dataset.name) == ("began", "began", "mnist")
    assert 0 < cfg.model.gamma <= 1 and cfg.model.lambda_k > 0


@pytest.mark.parametrize(
    "override, key",
    [("loss=hinge", "loss:"), ("train.d_steps=2", "train.d_steps=2"), ("train.replay_size=8", "train.replay_size=8"),
     ("model.gamma=0", "model.gamma=0"), ("model.k_init=1.5", "model.k_init=1.5")],
)
def test_combinations_that_cannot_work_are_refused(override, key):
    cfg = compose_train(TINY + TINY_BEGAN + [override])
    if override.startswith("loss="):  # the refusal reads the command line's overrides, which gan-train records
        with open_dict(cfg):
            OmegaConf.update(cfg, "hydra", {"overrides": {"task": [override]}}, force_add=True)
    with pytest.raises(GanError, match=key.replace("(", r"\(")):
        check_train_config(cfg)


def test_toy_vector_data_are_refused_with_one_message():
    cfg = compose_train(["model=began", "dataset=ring_2d"])
    with pytest.raises(GanError, match="holds points, not images, and model=began is convolutional") as err:
        check_train_config(cfg)
    assert str(err.value).count(";") == 0  # one problem


def test_gan_train_refuses_a_loss_for_began(tmp_path):
    result = run_cli("gan-train", *FAST_BEGAN, "loss=hinge", cwd=tmp_path)
    assert_user_error(result, "loss: model=began has no adversarial loss to choose")


def test_m_global_pairs_with_the_fid_of_each_evaluation(tmp_path):
    """scripts/m_global_vs_fid.py reads the logged M_global at each evaluation step beside its FID."""
    import importlib.util
    import json
    from pathlib import Path

    from torch.utils.tensorboard import SummaryWriter

    path = Path(__file__).parents[1] / "scripts" / "m_global_vs_fid.py"
    spec = importlib.util.spec_from_file_location("m_global_vs_fid", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    with SummaryWriter(str(tmp_path / "tb")) as writer:
        for step, m in ((50, 0.9), (100, 0.5), (150, 0.4), (200, 0.3)):
            writer.add_scalar("began/M_global", m, step)
    lines = [{"step": 100, "fid": 80.0}, {"step": 200, "fid": 40.0}, {"step": 250, "fid": 30.0}]  # 250: no M logged
    (tmp_path / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
    assert script.paired_values(tmp_path) == [(100, pytest.approx(0.5), 80.0), (200, pytest.approx(0.3), 40.0)]
