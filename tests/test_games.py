"""Games: the GAN families as one game behave exactly as before games existed, and format-1
checkpoints (written by that code) still resume, sample and evaluate."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from gan_cli.inference import sampler_from_checkpoint
from gan_cli.sampling.inputs import seeded_inputs
from gan_cli.training import distributed
from gan_cli.training.checkpoint import FORMAT_VERSION, load_checkpoint
from gan_cli.training.loop import build_training
from tests.helpers import TINY, compose_train, resume_tiny, run_cli, tiny_model

FIXTURES = Path(__file__).parent / "fixtures"
BEFORE = json.loads((FIXTURES / "before_games.json").read_text())
FORMAT_1 = FIXTURES / "format1_dcgan_fake.pt"


def weight_sums(network: torch.nn.Module) -> float:
    return float(sum(p.double().sum() for p in network.state_dict().values() if p.is_floating_point()))


@pytest.mark.parametrize("case", sorted(BEFORE))
def test_the_gan_game_gives_the_numbers_recorded_before_games(case):
    """Three steps of each model x loss x trick, fp32, compared with values the code before games
    recorded (tests/fixtures/before_games.json: scalars of every step, and weight sums of G, D and
    the EMA of G after them). The fixture was recorded on another CPU (AMD Zen 4), whose oneDNN
    kernels round differently: Adam's first updates are +-lr whatever a gradient's size, so a
    gradient near 0 whose sign the rounding flips moves its weight by 2 lr the other way. The
    tolerances take that in; a changed loss, term or update order moves the scalars far more."""
    recorded = BEFORE[case]
    cfg = compose_train(TINY + tiny_model(recorded["model"]) + ["train.precision=fp32"] + recorded["overrides"])
    training = build_training(cfg, torch.device("cpu"), distributed.current())
    for expected in recorded["scalars"]:
        scalars = {name: float(value) for name, value in training.step().items()}
        training.state.step += 1
        assert scalars.keys() == expected.keys()
        for name, value in expected.items():
            assert scalars[name] == pytest.approx(value, rel=1e-4, abs=1e-5), name
    game, averages = training.state.game, training.state.averages
    sums = {"G": weight_sums(game.networks["G"]), "D": weight_sums(game.networks["D"]), "G_ema": weight_sums(averages["G"].module)}
    for name, value in recorded["weight_sums"].items():
        assert sums[name] == pytest.approx(value, rel=1e-3, abs=1e-3), name


def test_a_format_1_checkpoint_loads_as_format_2():
    checkpoint = load_checkpoint(FORMAT_1)
    assert checkpoint["format_version"] == FORMAT_VERSION == 2
    assert set(checkpoint["networks"]) == {"G", "D"} and set(checkpoint["ema"]) == {"G"}
    assert set(checkpoint["optimizers"]) == set(checkpoint["scalers"]) == {"generator", "discriminator"}
    assert checkpoint["config"]["model"]["game"] == "adversarial" and checkpoint["step"] == 4
    raw = torch.load(FORMAT_1, weights_only=True)
    assert raw["format_version"] == 1
    assert all(torch.equal(raw["generator_ema"][k], v) for k, v in checkpoint["ema"]["G"].items())
    assert torch.equal(raw["latent_rng"], checkpoint["rng"])


def test_a_format_1_checkpoint_samples_with_its_ema_weights():
    generator = sampler_from_checkpoint(load_checkpoint(FORMAT_1))
    images = generator(**seeded_inputs(generator, 3, seed=0))
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1


def test_a_format_1_run_resumes_and_writes_format_2(tmp_path):
    run_dir = tmp_path / "run"
    (run_dir / "checkpoints").mkdir(parents=True)
    shutil.copy(FORMAT_1, run_dir / "checkpoints" / "last.pt")
    resume_tiny(run_dir, ["train.steps=6"])
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["format_version"] == 2 and checkpoint["step"] == 6
    assert checkpoint["optimizers"]["generator"]["state"][0]["step"] == 6  # Adam's count went on from 4


def test_gan_sample_and_gan_eval_read_a_format_1_checkpoint(tmp_path, mnist_root):
    sample = run_cli("gan-sample", f"ckpt={FORMAT_1}", "n=4", f"out={tmp_path / 'x.npz'}", cwd=tmp_path)
    assert sample.returncode == 0, sample.stderr
    assert np.load(tmp_path / "x.npz")["images"].shape[0] == 4
    evaluation = run_cli("gan-eval", f"ckpt={FORMAT_1}", "n=20", "metrics=[kid]", f"out={tmp_path / 'm.json'}",
                         f"data_root={mnist_root}", cwd=tmp_path)
    assert evaluation.returncode == 0, evaluation.stderr
    assert json.loads((tmp_path / "m.json").read_text())["generator"] == "EMA"
