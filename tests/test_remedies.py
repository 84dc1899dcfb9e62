"""Remedies for mode collapse: minibatch standard deviation, packing, feature matching and an unrolled D,
each on its own and through gan-train and gan-sample."""

import copy
import re
from contextlib import nullcontext

import numpy as np
import pytest
import torch

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.losses.feature_matching import feature_matching
from gan_cli.models import build_networks
from gan_cli.models.minibatch import MinibatchStd, packed
from gan_cli.training import distributed
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import build_training
from gan_cli.validation import check_train_config
from tests.forked import run_forked
from tests.helpers import FAST, TINY, assert_same_tree, compose_train, run_cli, tiny_model

MNIST_SHAPE = DataShape((1, 28, 28), 10)


def networks(option: str, *overrides: str):
    """(G, D) of the tiny model `option` with `overrides`, for 1x28x28 images of 10 classes."""
    cfg = compose_train(TINY + tiny_model(option) + list(overrides))
    return build_networks(cfg.model, MNIST_SHAPE)


def first_layer(discriminator: torch.nn.Module) -> torch.nn.Module:
    return next(m for m in discriminator.body.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)))


def training(*overrides: str, option: str = "dcgan"):
    """A tiny fp32 run's Training on the CPU, at step 0."""
    cfg = compose_train(TINY + tiny_model(option) + ["train.precision=fp32", *overrides])
    return build_training(cfg, torch.device("cpu"), distributed.current())


# --- minibatch standard deviation (Karras et al. 2018) -----------------------------------------------


def test_minibatch_std_appends_one_channel_holding_the_mean_std_over_the_batch():
    x = torch.randn(5, 3, 4, 4)
    out = MinibatchStd()(x)
    assert out.shape == (5, 4, 4, 4) and torch.equal(out[:, :3], x)
    values = x.numpy()
    by_hand = np.sqrt(((values - values.mean(axis=0)) ** 2).mean(axis=0) + 1e-8).mean()  # per (c, h, w), then averaged
    assert torch.allclose(out[:, 3], torch.tensor(by_hand, dtype=torch.float32).expand(5, 4, 4), rtol=1e-6)
    flat = MinibatchStd()(torch.tensor([[0.0, 1.0], [2.0, 5.0]]))  # stds 1 and 2: their mean 1.5
    assert flat.shape == (2, 3) and flat[:, 2].tolist() == pytest.approx([1.5, 1.5])


@pytest.mark.parametrize("option", ["dcgan", "mlp"])
def test_minibatch_std_gives_the_logit_head_exactly_one_more_input(option):
    head_inputs = []
    for setting in ("false", "true"):
        _, discriminator = networks(option, f"model.minibatch_std={setting}")
        head = [m for m in discriminator.head.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))][0]
        head_inputs.append(head.weight.shape[1])
        assert discriminator(torch.randn(6, 1, 28, 28)).logits.shape == (6,)
    assert head_inputs[1] == head_inputs[0] + 1


# --- packing (Lin et al. 2018) ---------------------------------------------------------------------


def test_packing_puts_consecutive_samples_side_by_side_along_channels():
    x = torch.randn(6, 3, 4, 4)
    pairs = packed(x, 2)
    assert pairs.shape == (3, 6, 4, 4)
    assert torch.equal(pairs[1], torch.cat([x[2], x[3]]))
    assert packed(x, 1) is x


@pytest.mark.parametrize("option,inputs", [("dcgan", 1), ("cgan", 1 + 10), ("mlp", 28 * 28), ("cgan_mlp", 28 * 28 + 10)])
def test_a_packed_discriminator_reads_m_samples_and_judges_b_over_m(option, inputs):
    """The first layer reads m samples (each with its label, for conditional models); B in, B / m out."""
    for pack in (1, 4):
        _, discriminator = networks(option, f"model.pack={pack}")
        assert first_layer(discriminator).weight.shape[1] == pack * inputs
        labels = torch.arange(8) % 10 if discriminator.num_classes else None
        out = discriminator(torch.randn(8, 1, 28, 28), labels)
        assert out.logits.shape == (8 // pack,) and len(out.features) == 8 // pack


def test_gradient_penalty_and_r1_of_a_packed_critic_train():
    run = training("model.pack=2", "loss=wgan_gp", "model.minibatch_std=true", option="cgan")
    scalars = run.step()
    assert scalars["loss/gradient_penalty"] > 0 and torch.isfinite(scalars["loss/G"])
    run = training("model.pack=4", "loss.r1=1", "model.d_norm=layer")
    assert run.step()["loss/r1"] > 0


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model.pack=3"], "model.pack=3 must divide train.batch_size=8: D judges the real and the fake batches in 3-tuples"),
        (["model.pack=0"], "model.pack=0 must be positive"),
        (["model=infogan", "model.pack=2"], "model.pack=2 with model=infogan: InfoGAN's Q head reads each sample's codes"),
        (["loss.generator_objective=moments"], "loss.generator_objective='moments' must be one of adversarial, feature_matching"),
        (["train.unroll_steps=-1"], "train.unroll_steps=-1 must not be negative"),
    ],
)
def test_remedy_settings_that_cannot_work_are_refused(overrides, message):
    option = "infogan" if "model=infogan" in overrides else "dcgan"
    with pytest.raises(GanError, match=re.escape(message)):
        check_train_config(compose_train(TINY + tiny_model(option) + overrides))


@pytest.mark.parametrize(
    "args,message",
    [
        (["model.pack=3"], "model.pack=3 must divide train.batch_size=16"),
        (["model=vae", "train.unroll_steps=2"], "train.unroll_steps=2: model=vae has no discriminator updates to repeat, unroll"),
        (["model=began", "loss.generator_objective=feature_matching"], "loss: model=began has no adversarial loss to choose"),
        (["model=vaegan", "loss.generator_objective=feature_matching"], "loss.generator_objective=feature_matching: model=vaegan's decoder has its own objective"),
        (["model=vae", "model.pack=2"], "Key 'pack' not in 'VAEConfig'"),
        (["model=began", "model.minibatch_std=true"], "Key 'minibatch_std' not in 'BEGANConfig'"),
    ],
)
def test_gan_train_refuses_a_remedy_a_family_cannot_take_in_one_line(tmp_path, args, message):
    result = run_forked("debug=smoke", *args, cwd=tmp_path)
    assert result.returncode == 1 and message in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("gan-train: error: ")
    assert not (tmp_path / "outputs").exists()


# --- feature matching (Salimans et al. 2016) -------------------------------------------------------


def test_feature_matching_is_the_squared_distance_of_the_batch_means():
    real = torch.tensor([[1.0, 2.0], [3.0, 4.0]])  # mean (2, 3)
    fake = torch.tensor([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0]])  # mean (1, 1)
    assert feature_matching(real, fake).item() == pytest.approx(1.0 + 4.0)
    maps = torch.randn(4, 2, 3, 3)
    assert feature_matching(maps, maps).item() == 0.0


def test_feature_matching_trains_g_alone_on_ds_last_hidden_features(one_thread):
    run = training("loss.generator_objective=feature_matching", "model.dropout=0", "model.input_dropout=0", option="mlp")
    game, updates = run.state.game, run.state.updates
    generator, discriminator = game.networks["G"], game.networks["D"]
    real = torch.rand(8, 1, 28, 28) * 2 - 1
    inputs = generator.sample_inputs(8, torch.Generator().manual_seed(0))
    fake = generator(**inputs)
    with torch.no_grad():  # D's last hidden layer: (B, 16) maxout units
        real_features, fake_features = discriminator(real).features, discriminator(fake).features
    expected = ((real_features.mean(dim=0) - fake_features.mean(dim=0)) ** 2).sum()
    g_before, d_before = copy.deepcopy(generator.state_dict()), copy.deepcopy(discriminator.state_dict())
    scalars = game.generator_step(updates, discriminator, real, None, fake, inputs, nullcontext)
    assert scalars["loss/G"].item() == pytest.approx(expected.item(), rel=1e-5)
    assert all(p.grad is None for p in discriminator.parameters())  # no gradient reached D
    assert_same_tree(discriminator.state_dict(), d_before, "D")
    assert any(not torch.equal(value, g_before[key]) for key, value in generator.state_dict().items())


# --- unrolled D (Metz et al. 2017) -------------------------------------------------------------------


def test_the_unrolled_copy_trains_ahead_and_leaves_d_and_its_optimizer_untouched(one_thread):
    run = training("train.unroll_steps=3", "loss=wgan")
    run.step()  # Adam has moments and a step count now
    state, game = run.state, run.state.game
    discriminator, optimizer = game.networks["D"], state.updates.optimizers["discriminator"]
    weights, moments = copy.deepcopy(discriminator.state_dict()), copy.deepcopy(optimizer.state_dict())
    unrolled = game.unrolled_discriminator(state.data, state.updates, state.rng, nullcontext)
    assert_same_tree(discriminator.state_dict(), weights, "D")
    assert_same_tree(optimizer.state_dict(), moments, "optimizer")
    assert unrolled is not discriminator and not any(p.requires_grad for p in unrolled.parameters())
    moved = [key for key, value in unrolled.state_dict().items() if not torch.equal(value, weights[key])]
    assert moved  # three updates of its own
    clip = game.objective.clip  # the WGAN's clipping applies to the copy's updates as to D's
    assert all(p.abs().max() <= clip for p in unrolled.parameters())


def test_a_step_with_an_unrolled_d_changes_d_only_by_its_own_update(one_thread):
    """With the look-ahead, a step reads 1 + K batches; D's update itself is the same as without it.
    (Its batch norm's running statistics differ: without the look-ahead, G's step runs D itself.)"""
    plain, unrolled = training(), training("train.unroll_steps=2")
    plain.step(), unrolled.step()
    assert unrolled.state.data.state_dict()["position"] == plain.state.data.state_dict()["position"] + 2 * 8
    assert_same_tree(dict(unrolled.state.game.networks["D"].named_parameters()),
                     dict(plain.state.game.networks["D"].named_parameters()), "D")


# --- through the command line ---------------------------------------------------------------------

MLP = ["model=mlp", "model.g_hidden=[32]", "model.d_hidden=[16]"]


@pytest.mark.parametrize(
    "args",
    [
        [*FAST, "model.minibatch_std=true", "loss=wgan_gp"],
        [*FAST, "model=cgan", "model.pack=2", "model.matching_aware=true", "loss=hinge"],
        [*FAST, "loss=lsgan", "loss.generator_objective=feature_matching"],
        [*FAST, "model=infogan", "train.unroll_steps=2", "loss=wgan", "train.d_steps=2"],
        ["debug=smoke", "log.progress_bar=false", *MLP, "model.pack=4", "model.minibatch_std=true", "loss=minimax",
         "loss.generator_objective=feature_matching", "train.unroll_steps=1"],
    ],
    ids=["minibatch_std-wgan_gp", "pack-cgan-hinge", "feature_matching-lsgan", "unrolled-infogan-wgan", "all-mlp-minimax"],
)
def test_each_remedy_trains_from_the_command_line(tmp_path, args):
    result = run_forked(*args, "train.steps=3", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert load_checkpoint(tmp_path / "run")["step"] == 3


def test_a_run_with_every_remedy_resumes_and_samples(tmp_path):
    run = tmp_path / "run"
    remedies = ["model.pack=2", "model.minibatch_std=true", "loss.generator_objective=feature_matching", "train.unroll_steps=1"]
    first = run_forked(*FAST, "model=cgan", *remedies, "loss=hinge", "train.steps=3", f"hydra.run.dir={run}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    resumed = run_forked(f"resume={run}", "train.steps=5", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    checkpoint = load_checkpoint(run)
    assert checkpoint["step"] == 5 and checkpoint["config"]["model"]["pack"] == 2
    assert checkpoint["config"]["train"]["unroll_steps"] == 1
    result = run_cli("gan-sample", f"ckpt={run}", "labels=all", "n=20", "out=x.npz", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert np.bincount(np.load(tmp_path / "x.npz")["labels"]).tolist() == [2] * 10
