"""The encoder families without a discriminator (model=ae, model=vae, the 2-Stage VAE): their
likelihoods against closed forms, short real runs, exact resume, the fitted samplers, and the CLI."""

import json
import math
import shutil

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.distributions import Bernoulli, Normal, kl_divergence

from gan_cli.errors import GanError
from gan_cli.inference import encoder_from_checkpoint, sampler_from_checkpoint
from gan_cli.losses.likelihood import bernoulli_nll, gaussian_nll, gaussian_pixel_nll, kl_to_standard_normal
from gan_cli.models.autoencoder import FittedMixture, choose_latent_source, encode
from gan_cli.training import distributed
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import build_training, training_loop
from gan_cli.validation import check_train_config
from tests.helpers import FAST, TINY, assert_user_error, compose_train, resume_tiny, run_cli, run_clis

# Test-sized encoder families (TINY's fake 28x28 data; mixture of 3 components on its 64 images).
AE = ["model=ae", "model.width=8", "model.latent_dim=4", "model.mixture_components=3"]
VAE = ["model=vae", "model.width=8", "model.latent_dim=4"]
TWO_STAGE = VAE + ["model.second_stage.steps=3", "model.second_stage.hidden=16"]
FAMILIES = {"ae": AE, "vae": VAE, "vae_2stage": TWO_STAGE}


def train(run_dir, overrides, *extra):
    overrides = TINY + list(overrides) + list(extra)
    return training_loop(compose_train(overrides), run_dir, {"overrides": overrides})


def scalars(run_dir) -> dict[str, list[float]]:
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


# --- the likelihoods' closed forms -------------------------------------------------------------------


def test_kl_of_a_diagonal_gaussian_to_the_standard_normal():
    mean, log_var = torch.tensor([[0.5, -1.0, 2.0], [0.0, 0.0, 0.0]]), torch.tensor([[0.3, -0.7, 1.2], [0.0, 0.0, 0.0]])
    expected = kl_divergence(Normal(mean, (0.5 * log_var).exp()), Normal(0.0, 1.0)).sum(1)  # (2,)
    assert expected[1] == 0  # N(0, I) itself
    assert kl_to_standard_normal(mean, log_var).item() == pytest.approx(expected.mean().item(), rel=1e-6)
    # by hand for one dimension: 0.5 * (mu^2 + s^2 - log s^2 - 1)
    assert kl_to_standard_normal(torch.tensor([[1.0]]), torch.tensor([[0.0]])).item() == pytest.approx(0.5)


def test_bernoulli_nll_is_the_cross_entropy_of_grey_levels():
    logits = torch.tensor([[[[2.0, -1.0], [0.0, 3.0]]]])  # (1, 1, 2, 2)
    x = torch.tensor([[[[1.0, -1.0], [0.0, 0.5]]]])  # intensities t = 1, 0, 0.5, 0.75
    t, p = (x + 1) / 2, torch.sigmoid(logits)
    expected = -(t * p.log() + (1 - t) * (1 - p).log()).sum()
    assert bernoulli_nll(logits, x).item() == pytest.approx(expected.item(), rel=1e-6)
    binary = torch.tensor([[[[1.0, -1.0], [-1.0, 1.0]]]])  # for 0/1 targets it is -log of the Bernoulli probability
    assert bernoulli_nll(logits, binary).item() == pytest.approx(-Bernoulli(logits=logits).log_prob((binary + 1) / 2).sum().item(), rel=1e-6)


def test_gaussian_nll_matches_the_normal_density():
    mean, target = torch.tensor([[0.2, 0.9, 0.4]]), torch.tensor([[0.0, 1.0, 0.5]])
    for log_std in (0.0, math.log(0.1), torch.tensor(-1.5)):
        expected = -Normal(mean, torch.as_tensor(log_std).exp()).log_prob(target).sum()
        assert gaussian_nll(mean, target, log_std).item() == pytest.approx(expected.item(), rel=1e-5)
    # the pixel version reads logits and images in [-1, 1]: mean sigmoid(h), target (x + 1) / 2
    logits, x = torch.tensor([[1.0, -2.0]]), torch.tensor([[0.5, -1.0]])
    expected = -Normal(torch.sigmoid(logits), 1.0).log_prob((x + 1) / 2).sum()
    assert gaussian_pixel_nll(logits, x, 0.0).item() == pytest.approx(expected.item(), rel=1e-6)


def test_a_fitted_mixture_samples_its_components():
    mixture = FittedMixture(2, 2)
    covariances = torch.stack([torch.tensor([[1.0, 0.5], [0.5, 1.0]]), torch.eye(2) * 0.01])
    mixture.set(torch.tensor([0.25, 0.75]), torch.tensor([[5.0, 5.0], [-5.0, 0.0]]), covariances)
    z = mixture.sample(20000, 2, torch.Generator().manual_seed(0), torch.device("cpu"))
    first = z[:, 0] > 0
    assert first.float().mean().item() == pytest.approx(0.25, abs=0.02)
    assert torch.allclose(torch.cov(z[first].T), covariances[0], atol=0.05)
    assert torch.allclose(z[~first].mean(0), torch.tensor([-5.0, 0.0]), atol=0.01)


# --- training ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_trains_on_fake_data(tmp_path, family):
    train(tmp_path, FAMILIES[family], "log.every=1")
    values = scalars(tmp_path)
    first_stage = 3 if family == "vae_2stage" else 6
    assert len(values["loss/reconstruction"]) == first_stage
    assert values["loss/reconstruction"][-1] < values["loss/reconstruction"][0]  # it learns
    assert ("loss/kl" in values) == ("elbo" in values) == (family != "ae")
    if family != "ae":  # the ELBO is minus the beta = 1 loss
        assert values["elbo"] == pytest.approx([-v for v in values["loss/total"]])
    if family == "vae_2stage":
        assert len(values["second_stage/reconstruction"]) == 3 and "lr/second_stage" in values
    checkpoint = load_checkpoint(tmp_path)
    assert set(checkpoint["ema"]) == {"encoder", "decoder"}
    images = sampler_from_checkpoint(checkpoint)(torch.randn(5, 4))
    assert images.shape == (5, 1, 28, 28) and images.abs().max() <= 1
    assert (tmp_path / "samples" / "step_0000006_reconstructions.png").is_file()


@pytest.mark.parametrize("family", ["ae", "vae"])
def test_each_family_trains_on_mnist(tmp_path, mnist_root, family):
    overrides = ["dataset=mnist", f"dataset.root={mnist_root}", "train.batch_size=32", "train.steps=20", "log.every=10",
                 "samples.every=20", "checkpoint.every=20", "log.progress_bar=false", "eval.every=null", *FAMILIES[family]]
    training_loop(compose_train(overrides), tmp_path, {"overrides": overrides})
    values = scalars(tmp_path)
    assert values["loss/total"][-1] < values["loss/total"][0] < 600  # 784 pixels at log 2 each is 543 nats
    assert bool(load_checkpoint(tmp_path)["ema"]["decoder"].get("prior.is_fitted", False)) == (family == "ae")


@pytest.mark.parametrize("family", FAMILIES)
def test_resume_is_bit_identical(tmp_path, family):
    """A run resumed from the checkpoint it wrote at step 4 (the 2-Stage VAE: at step 6, inside its
    second stage, which trains steps 6 to 8) ends as the uninterrupted run does. (Stopping a run by
    a shorter train.steps would move the 2-Stage VAE's split between its stages.)"""
    stop = 6 if family == "vae_2stage" else 4
    overrides = FAMILIES[family] + ["train.steps=8", "checkpoint.every=2", "checkpoint.keep_every=2", "samples.every=4"]
    train(tmp_path / "straight", overrides)
    (tmp_path / "resumed" / "checkpoints").mkdir(parents=True)
    shutil.copy(tmp_path / "straight" / "checkpoints" / f"step_{stop:07d}.pt", tmp_path / "resumed" / "checkpoints" / "last.pt")
    resume_tiny(tmp_path / "resumed")
    a, b = load_checkpoint(tmp_path / "straight"), load_checkpoint(tmp_path / "resumed")
    assert a["step"] == b["step"] == 8
    for key in ("networks", "ema"):
        for network in a[key]:
            for name, value in a[key][network].items():
                assert torch.equal(value, b[key][network][name]), f"{key}.{network}.{name}"
    for optimizer in a["optimizers"]:
        for index, state in a["optimizers"][optimizer]["state"].items():
            for name, value in state.items():
                assert torch.equal(value, b["optimizers"][optimizer]["state"][index][name]), f"{optimizer}[{index}].{name}"
    assert torch.equal(a["rng"], b["rng"]) and torch.equal(a["data"]["order"], b["data"]["order"])
    grid = "samples/step_0000008_reconstructions.png"
    assert (tmp_path / "straight" / grid).read_bytes() == (tmp_path / "resumed" / grid).read_bytes()


def test_the_autoencoder_fits_its_mixture_to_the_codes_of_training_images(tmp_path):
    train(tmp_path, AE)
    checkpoint = load_checkpoint(tmp_path)
    decoder, encoder = sampler_from_checkpoint(checkpoint), encoder_from_checkpoint(checkpoint)
    assert decoder.prior.fitted
    assert torch.equal(checkpoint["networks"]["decoder"]["prior.means"], checkpoint["ema"]["decoder"]["prior.means"])
    cfg = compose_train(TINY + AE)
    data = build_training(cfg, torch.device("cpu"), distributed.current()).state.data
    codes = encode(encoder, data.head(64))  # the 64 fake images, by the EMA encoder
    # The mixture's mean is the codes' mean (EM keeps the weighted means exact), and its samples are near the codes.
    mean = (decoder.prior.weights[:, None] * decoder.prior.means).sum(0)
    assert torch.allclose(mean, codes.mean(0), atol=1e-4)
    fitted = decoder.sample_inputs(2000, torch.Generator().manual_seed(0))["z"]
    choose_latent_source(decoder, "prior")
    prior = decoder.sample_inputs(2000, torch.Generator().manual_seed(0))["z"]
    assert torch.allclose(fitted.mean(0), codes.mean(0), atol=0.1 * codes.std(0).max())
    assert torch.allclose(prior, torch.randn(2000, 4, generator=torch.Generator().manual_seed(0)))


def test_the_second_stage_trains_after_the_first_and_becomes_the_sampler(tmp_path):
    train(tmp_path, TWO_STAGE, "train.steps=6", "checkpoint.every=3", "checkpoint.keep_every=3")
    first, both = load_checkpoint(tmp_path / "checkpoints" / "step_0000003.pt"), load_checkpoint(tmp_path)
    for name in ("encoder", "decoder"):  # the second stage (steps 4 to 6) leaves the first alone, batch norm too
        for key, value in first["networks"][name].items():
            if not key.startswith("prior."):
                assert torch.equal(value, both["networks"][name][key]), f"{name}.{key}"
    stage = both["networks"]["second_stage"]
    assert stage["is_fitted"] and not first["networks"]["decoder"]["prior.is_fitted"]
    assert not torch.equal(stage["decoder.0.weight"], first["networks"]["second_stage"]["decoder.0.weight"])
    for key, value in stage.items():  # the sampler carries the trained second stage
        assert torch.equal(both["ema"]["decoder"][f"prior.{key}"], value), key
    decoder = sampler_from_checkpoint(both)
    z = decoder.sample_inputs(3, torch.Generator().manual_seed(0))["z"]
    u = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(z, decoder.prior.decoder(u))


# --- refusals ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides, message",
    [
        (VAE + ["train.d_steps=2"], "train.d_steps=2: model=vae has no discriminator updates"),
        (AE + ["train.replay_size=4"], "train.replay_size=4: model=ae has no discriminator updates"),
        (VAE + ["model.likelihood=poisson"], "model.likelihood='poisson' must be one of bernoulli, gaussian"),
        (VAE + ["model.beta=-1"], "model.beta=-1.0 must not be negative"),
        (TWO_STAGE + ["train.steps=3"], "model.second_stage.steps=3 must be below train.steps=3"),
        (AE + ["eval.metrics=[reconstruction]", "eval.best=reconstruction_mse"], "eval.metrics: reconstruction is scored by gan-eval"),
    ],
)
def test_combinations_that_cannot_work_are_refused(overrides, message):
    with pytest.raises(GanError, match="invalid config") as error:
        check_train_config(compose_train(TINY + overrides))
    assert message in str(error.value)


def test_an_encoder_family_on_points_is_refused_with_one_message():
    for model in (AE, VAE):
        with pytest.raises(GanError) as error:
            check_train_config(compose_train(TINY + model + ["dataset=ring_2d"]))
        assert str(error.value) == (f"invalid config: {model[0]} encodes and decodes images, and dataset=ring_2d holds "
                                    "points: train it on image data (dataset=mnist, ...)")


def test_sampler_fitted_needs_a_fitted_density(tmp_path):
    train(tmp_path, VAE, "train.steps=2")
    decoder = sampler_from_checkpoint(load_checkpoint(tmp_path))
    with pytest.raises(GanError, match="sampler=fitted: this checkpoint holds no fitted latent density"):
        choose_latent_source(decoder, "fitted")


# --- the command line ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ae_run(tmp_path_factory):
    """A gan-train run of the autoencoder (20 steps of debug=smoke, narrow networks)."""
    cwd = tmp_path_factory.mktemp("ae_cli")
    result = run_cli("gan-train", "debug=smoke", *AE, "log.progress_bar=false", "hydra.run.dir=run", cwd=cwd)
    assert result.returncode == 0, result.stderr
    return cwd


def test_gan_sample_draws_reconstructs_and_walks_from_the_cli(ae_run):
    cwd, ckpt = ae_run, f"ckpt={ae_run / 'run'}"
    fitted, prior = run_clis(
        [
            ("gan-sample", ckpt, "n=6", "out=fitted.npz", "sampler=fitted"),
            ("gan-sample", ckpt, "n=6", "out=prior.npz", "sampler=prior"),
        ],
        cwd=cwd,
    )
    rebuilt, grid, walk, no_images, stray_images = run_clis(
        [
            ("gan-sample", ckpt, "mode=reconstruct", "images=prior.npz", "n=4", "out=rebuilt.npz"),
            ("gan-sample", ckpt, "mode=reconstruct", "images=prior.npz", "n=4", "nrow=2", "out=rebuilt.png"),
            ("gan-sample", ckpt, "mode=interpolate", "n=2", "steps=3", "out=walk.png"),
            ("gan-sample", ckpt, "mode=reconstruct", "out=x.png"),
            ("gan-sample", ckpt, "images=prior.npz", "out=x.png"),
        ],
        cwd=cwd,
    )
    for result in (fitted, prior, rebuilt, grid, walk):
        assert result.returncode == 0, result.stderr
    a, b = np.load(cwd / "fitted.npz")["images"], np.load(cwd / "prior.npz")["images"]
    assert a.shape == b.shape == (6, 28, 28, 1) and not np.array_equal(a, b)
    assert np.load(cwd / "rebuilt.npz")["images"].shape == (4, 28, 28, 1)
    assert Image.open(cwd / "rebuilt.png").size == (2 + 2 * 30, 2 + 4 * 30)  # 2 columns; inputs and reconstructions: 4 rows
    assert_user_error(no_images, "mode=reconstruct needs images=")
    assert_user_error(stray_images, "images= is read by mode=reconstruct")


def test_gan_eval_scores_samplers_and_reconstructions_from_the_cli(ae_run, mnist_root):
    cwd, ckpt = ae_run, f"ckpt={ae_run / 'run'}"
    common = ["n=50", f"data_root={mnist_root}"]
    fitted, prior = run_clis(
        [
            ("gan-eval", ckpt, *common, "metrics=[fid,reconstruction]", "sampler=fitted", "out=fitted.json"),
            ("gan-eval", ckpt, *common, "metrics=[fid]", "sampler=prior", "out=prior.json"),
        ],
        cwd=cwd,
    )
    assert fitted.returncode == 0, fitted.stderr
    assert prior.returncode == 0, prior.stderr
    a, b = (json.loads((cwd / name).read_text()) for name in ("fitted.json", "prior.json"))
    assert (a["sampler"], b["sampler"]) == ("fitted", "prior")
    assert a["metrics"]["fid"]["value"] != b["metrics"]["fid"]["value"]
    mse, accuracy = a["metrics"]["reconstruction_mse"], a["metrics"]["reconstruction_accuracy"]
    assert 0 < mse["value"] < 1 and mse["floor"] == 0
    assert 0 <= accuracy["value"] <= 1 and accuracy["floor"] > 0.9  # the evaluator on the test images themselves


def test_the_cli_refuses_what_an_encoder_family_does_not_play(tmp_path):
    loss, d_steps, points = run_clis(
        [
            ("gan-train", *FAST[:1], *VAE, "loss=hinge"),
            ("gan-train", *FAST[:1], *AE, "train.d_steps=2"),
            ("gan-train", *VAE, "dataset=ring_2d"),
        ],
        cwd=tmp_path,
    )
    assert_user_error(loss, "loss: model=vae has no adversarial loss to choose")
    assert_user_error(d_steps, "train.d_steps=2: model=ae has no discriminator updates")
    assert_user_error(points, "model=vae encodes and decodes images, and dataset=ring_2d holds points")
    assert not (tmp_path / "outputs").exists()
