"""The model families, losses and training tricks of issue 3, trained for real on tiny data."""

import logging

import pytest
import torch
from hydra.errors import ConfigCompositionException
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.data import DataShape
from gan_cli.errors import GanError
from gan_cli.losses import build_objective
from gan_cli.losses.adversarial import WassersteinLoss
from gan_cli.models import build_networks
from gan_cli.sampling.requests import write_requested_samples
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.hparams import hyperparameters
from gan_cli.training.loop import training_loop
from gan_cli.training.replay import ReplayBuffer
from gan_cli.validation import check_train_config
from tests.helpers import compose_train, resume_tiny, tiny_model, train_tiny

MODELS = ["mlp", "dcgan", "cgan", "cgan_mlp", "infogan"]
LOSSES = ["minimax", "nonsaturating", "lsgan", "wgan", "wgan_gp", "hinge"]
PRESETS = ["gan_mnist", "dcgan_mnist", "cgan_mnist", "infogan_mnist", "wgan_mnist", "wgan_gp_mnist", "lsgan_mnist", "hinge_mnist"]


def scalars(run_dir) -> dict[str, list[float]]:
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {tag: [e.value for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}


def networks_of(run_dir):
    checkpoint = load_checkpoint(run_dir)
    cfg = OmegaConf.create(checkpoint["config"])
    generator, discriminator = build_networks(cfg.model, DataShape.from_record(checkpoint["image_shape"]), cfg.loss.gradient_penalty > 0)
    generator.load_state_dict(checkpoint["networks"]["G"])
    discriminator.load_state_dict(checkpoint["networks"]["D"])
    return checkpoint, generator.eval(), discriminator.eval()


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", MODELS)
def test_every_model_trains_with_every_loss(tmp_path, model, loss):
    train_tiny(tmp_path, [f"loss={loss}", "train.steps=2", "log.every=1", "samples.every=2"], model=model)
    values = scalars(tmp_path)
    for tag in ("loss/D", "loss/G", "D(x)", "D(G(z))"):
        assert len(values[tag]) == 2 and all(torch.isfinite(torch.tensor(values[tag]))), tag
    assert ("critic/wasserstein_estimate" in values) == (loss in ("wgan", "wgan_gp"))
    assert ("loss/gradient_penalty" in values) == (loss == "wgan_gp")
    assert ("loss/info_G" in values and "loss/info_D" in values) == (model == "infogan")
    assert load_checkpoint(tmp_path)["step"] == 2


@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs(tmp_path, mnist_root, preset):
    overrides = [f"experiment={preset}", f"dataset.root={mnist_root}", "train.steps=2", "log.every=1",
                 "samples.every=2", "checkpoint.every=2", "log.progress_bar=false"]
    cfg = compose_train(overrides)
    check_train_config(cfg)
    training_loop(cfg, tmp_path, {"overrides": overrides})
    assert load_checkpoint(tmp_path)["config"]["model"]["name"] == {
        "gan_mnist": "gan", "cgan_mnist": "cgan", "infogan_mnist": "infogan"}.get(preset, "dcgan")


def test_presets_carry_their_papers_settings():
    wgan = compose_train(["experiment=wgan_mnist"])
    assert (wgan.loss.clip, wgan.train.d_steps, wgan.optimizer.generator._target_) == (0.01, 5, "torch.optim.RMSprop")
    assert wgan.optimizer.discriminator.lr == 5e-5
    gp = compose_train(["experiment=wgan_gp_mnist"])
    assert (gp.loss.name, gp.loss.gradient_penalty, gp.model.d_norm, list(gp.optimizer.generator.betas)) == (
        "wgan_gp", 10.0, "none", [0.0, 0.9])
    info = compose_train(["experiment=infogan_mnist"])
    assert (info.optimizer.generator.lr, info.optimizer.discriminator.lr) == (1e-3, 2e-4)
    assert (list(info.model.codes.categorical), info.model.codes.continuous, info.model.latent_dim) == ([10], 2, 62)
    gan = compose_train(["experiment=gan_mnist"])
    assert (gan.model.arch, gan.model.maxout_pieces, gan.train.batch_size) == ("mlp", 5, 100)
    hinge = compose_train(["experiment=hinge_mnist"])
    assert hinge.model.spectral_norm and hinge.loss.name == "hinge"


def test_a_wgan_gp_run_is_named_wgan_gp_and_trains_the_wasserstein_critic(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="gan_cli.training.loop"):
        train_tiny(tmp_path, ["loss=wgan_gp", "train.steps=2", "log.every=1"])
    assert "loss wgan_gp," in caplog.text and "loss wgan," not in caplog.text
    loss = load_checkpoint(tmp_path)["config"]["loss"]
    assert (loss["name"], loss["gradient_penalty"], loss["clip"]) == ("wgan_gp", 10.0, None)
    objective = build_objective(compose_train(["loss=wgan_gp"]).loss, compose_train().model)
    assert isinstance(objective.adversarial, WassersteinLoss) and (objective.gradient_penalty, objective.clip) == (10.0, None)
    assert hyperparameters(compose_train(["loss=wgan_gp"]), [])["loss.name"] == "wgan_gp"  # TensorBoard's HPARAMS tab


def test_a_wgan_gp_checkpoint_from_before_its_name_still_samples_and_resumes(tmp_path):
    """Such runs stored `loss.name: wgan` with the penalty; gan-sample rebuilds only G from them, and a
    resume composes their command line (loss=wgan_gp) again without calling the name a change."""
    train_tiny(tmp_path, ["loss=wgan_gp", "train.steps=2"])
    path = tmp_path / "checkpoints" / "last.pt"
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["config"]["loss"]["name"] = "wgan"
    torch.save(checkpoint, path)
    cfg = compose_train([f"ckpt={tmp_path}", "n=3", f"out={tmp_path / 'old.npz'}"], config_name="sample")
    assert write_requested_samples(sampler_from_checkpoint(load_checkpoint(tmp_path)), cfg).startswith("3 images (npz)")
    resume_tiny(tmp_path, ["train.steps=3"])
    resumed = load_checkpoint(tmp_path)
    assert resumed["step"] == 3 and resumed["config"]["loss"]["name"] == "wgan_gp"


def test_weight_clipping_keeps_the_critic_in_the_box(tmp_path):
    train_tiny(tmp_path, ["loss=wgan", "loss.clip=0.005", "optimizer=rmsprop", "train.steps=3"])
    for name, value in load_checkpoint(tmp_path)["networks"]["D"].items():
        if value.is_floating_point() and "running" not in name:
            assert value.abs().max() <= 0.005 + 1e-7, name


def test_infogan_q_head_recovers_the_categorical_code(tmp_path):
    train_tiny(
        tmp_path,
        ["train.steps=150", "optimizer.generator.lr=1e-3", "train.ema_decay=null", "samples.every=150"],
        model="infogan",
    )
    _, generator, discriminator = networks_of(tmp_path)
    with torch.no_grad():
        inputs = generator.sample_inputs(500, torch.Generator().manual_seed(1))
        codes = discriminator(generator(**inputs)).codes  # (500, 10 + 2 * 2)
    accuracy = (codes[:, :10].argmax(1) == inputs["c"][:, :10].argmax(1)).float().mean().item()
    assert accuracy > 0.4  # chance is 0.1


def test_conditional_training_grid_has_a_row_per_class(tmp_path):
    train_tiny(tmp_path, ["samples.n=20"], model="cgan")
    fixed = load_checkpoint(tmp_path)["fixed_inputs"]
    assert fixed["y"].tolist() == [k for k in range(10) for _ in range(2)]


def test_matching_aware_discriminator_trains(tmp_path):
    train_tiny(tmp_path, ["model.matching_aware=true", "train.steps=2"], model="cgan")
    assert load_checkpoint(tmp_path)["step"] == 2


def test_replay_buffer_mixes_old_fakes_in():
    buffer = ReplayBuffer(capacity=6, fraction=0.5)
    rng = torch.Generator().manual_seed(0)
    batch = lambda value: (torch.full((4, 1, 2, 2), float(value)), {"z": torch.zeros(4, 3), "y": torch.full((4,), value)})
    fake, inputs = buffer.mix(*batch(1), rng)  # empty buffer: the fresh batch as it is
    assert torch.equal(fake, torch.full((4, 1, 2, 2), 1.0)) and "z" not in inputs and buffer.size == 2
    buffer.mix(*batch(2), rng)
    buffer.mix(*batch(3), rng)
    assert buffer.size == 6
    fake, inputs = buffer.mix(*batch(4), rng)
    assert fake[:2].eq(4).all() and fake[2:].lt(4).all()  # half fresh, half replayed from earlier batches
    assert torch.equal(inputs["y"], fake[:, 0, 0, 0].long())  # labels travel with their images


def test_replay_buffer_in_training_is_checkpointed(tmp_path):
    train_tiny(tmp_path, ["train.replay_size=16", "train.steps=4"], model="cgan")
    replay = load_checkpoint(tmp_path)["game"]["replay"]
    assert replay["size"] == 16 and replay["fakes"].shape == (16, 1, 28, 28) and replay["inputs"]["y"].shape == (16,)


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["model=cgan", "dataset=fake", "dataset.num_classes=0"], "needs labels"),
        (["loss=wgan", "loss.gradient_penalty=10"], "weight clipping (loss.clip) and a gradient penalty"),
        (["model=infogan", "model.codes.categorical=[]", "model.codes.continuous=0"], "model=infogan needs latent codes"),
        (["model.codes.continuous=2"], "use model=infogan"),
        (["model.conditional=true"], "use model=cgan"),
        (["model.matching_aware=true"], "needs a conditional model"),
        (["loss=wgan_gp", "model.d_norm=batch"], "batch norm mixes samples"),
        (["loss=wgan", "loss.clip=null"], "needs a Lipschitz constraint"),
        (["loss=wgan", "loss.clip=null", "loss.gradient_penalty=10"], "instead of weight clipping is WGAN-GP: use loss=wgan_gp"),
        (["loss=wgan_gp", "loss.gradient_penalty=0"], "loss.gradient_penalty=0 turns the penalty off"),
        (["loss=wgan_gp", "loss.gradient_penalty=0", "model.spectral_norm=true"], "or use loss=wgan"),
        (["loss.label_smoothing=1.5"], "loss.label_smoothing=1.5 must be in [0, 1)"),
        (["train.replay_fraction=2"], "train.replay_fraction=2.0 must be in [0, 1]"),
        (["model=mlp", "model.maxout_pieces=1"], "model.maxout_pieces=1 must be at least 2"),
    ],
)
def test_incompatible_combinations_are_refused_with_the_way_out(overrides, message):
    with pytest.raises(GanError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        check_train_config(compose_train(overrides))


def test_label_smoothing_only_exists_for_cross_entropy_losses():
    with pytest.raises(ConfigCompositionException, match="loss.label_smoothing"):
        compose_train(["loss=wgan_gp", "loss.label_smoothing=0.1"])
