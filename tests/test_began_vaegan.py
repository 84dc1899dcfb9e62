"""What every family gets from the loop, for BEGAN and VAE-GAN alike: the NaN guard, the sampler
contract, and gan-train, gan-sample and gan-eval from the command line."""

import json
import math

import numpy as np
import pytest

from gan_cli.errors import GanError
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.sampling.inputs import seeded_inputs
from gan_cli.training.checkpoint import load_checkpoint
from tests.helpers import TINY, run_cli, run_clis, train_checked
from tests.test_began import TINY_BEGAN
from tests.test_vaegan import TINY_VAEGAN

FAMILIES = {"began": TINY_BEGAN, "vaegan": TINY_VAEGAN}  # each with latent_dim 8 or 4
LATENT = {"began": 8, "vaegan": 4}


@pytest.mark.parametrize("family", FAMILIES)
def test_the_nan_guard_stops_a_diverging_run(tmp_path, family):
    with pytest.raises(GanError, match=r"diverged at step \d+: the (encoder|generator|discriminator)'s (loss|gradients)"):
        train_checked(tmp_path, TINY + FAMILIES[family] + ["optimizer.lr=1e30"])


@pytest.mark.parametrize("family", FAMILIES)
def test_the_sampler_keeps_the_generator_contract(tmp_path, family):
    train_checked(tmp_path, TINY + FAMILIES[family] + ["train.steps=2"])
    sampler = sampler_from_checkpoint(load_checkpoint(tmp_path))
    images = sampler(**seeded_inputs(sampler, 5, seed=0))
    assert images.shape == (5, 1, 28, 28) and images.abs().max() <= 1
    assert sampler.latent_dim == LATENT[family] and sampler.num_classes == 0


@pytest.mark.parametrize("family", FAMILIES)
def test_gan_train_sample_and_eval_from_the_cli(tmp_path, mnist_root, family):
    run = tmp_path / "run"
    train = run_cli("gan-train", "debug=smoke", *FAMILIES[family], "log.progress_bar=false", f"hydra.run.dir={run}", cwd=tmp_path)
    assert train.returncode == 0, train.stderr
    assert {"began": "began_k_t", "vaegan": "vaegan_kl"}[family] in train.stdout  # (the terminal line writes / as _)
    ckpt = run / "checkpoints" / "last.pt"
    sample, evaluation = run_clis(
        [("gan-sample", f"ckpt={ckpt}", "n=6", f"out={tmp_path / 'x.npz'}"),
         ("gan-eval", f"ckpt={ckpt}", "n=20", "metrics=[fid]", f"out={tmp_path / 'm.json'}", f"data_root={mnist_root}")],
        cwd=tmp_path,
    )
    assert sample.returncode == 0, sample.stderr
    assert np.load(tmp_path / "x.npz")["images"].shape[0] == 6
    assert evaluation.returncode == 0, evaluation.stderr
    assert math.isfinite(json.loads((tmp_path / "m.json").read_text())["metrics"]["fid"]["value"])
