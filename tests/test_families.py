"""The model families, losses and training tricks of issue 3, trained for real on tiny data."""

import logging
from contextlib import nullcontext
from pathlib import Path

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
from gan_cli.training import distributed
from gan_cli.training.loop import build_training, training_loop
from gan_cli.training.replay import ReplayBuffer
from gan_cli.validation import check_train_config
from tests.helpers import TINY, compose_train, resume_tiny, tiny_model, train_tiny

MODELS = ["mlp", "dcgan", "cgan", "cgan_mlp", "infogan"]
LOSSES = ["minimax", "nonsaturating", "lsgan", "wgan", "wgan_gp", "hinge"]
PRESETS = ["gan_mnist", "dcgan_mnist", "cgan_mnist", "cgan_mnist_paper", "infogan_mnist", "wgan_mnist", "wgan_gp_mnist", "lsgan_mnist", "hinge_mnist"]


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


def d_and_g_losses_over_updates(model: str, loss: str, updates: int = 4) -> tuple[list[float], list[float]]:
    """loss/D before each of `updates` D updates on one real and one fake batch (G fixed), then loss/G
    before each of `updates` G updates on one batch of latents (D fixed)."""
    no_dropout = ["model.dropout=0", "model.input_dropout=0"] if model in ("mlp", "cgan_mlp") else []  # noise-free losses
    overrides = TINY + tiny_model(model) + [f"loss={loss}", "train.precision=fp32", "optimizer.lr=2e-4", *no_dropout]
    training = build_training(compose_train(overrides), torch.device("cpu"), distributed.current())
    state = training.state
    game, G, D = state.game, state.game.networks["G"], state.game.networks["D"]
    if game.objective.clip is not None:  # a WGAN critic lives in the clipping box (training clips after every update)
        with torch.no_grad():
            for param in D.parameters():
                param.clamp_(-game.objective.clip, game.objective.clip)
    real, labels = state.data.next()
    inputs = G.sample_inputs(len(real), state.rng, real.device)
    with torch.no_grad():
        fake = G(**inputs)
    d = [game.discriminator_step(state.updates, real, labels, fake, inputs, state.rng, nullcontext)["loss/D"].item() for _ in range(updates)]
    g = [game.generator_step(state.updates, D, real, labels, G(**inputs), inputs, nullcontext)["loss/G"].item() for _ in range(updates)]
    return d, g


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("model", MODELS)
def test_every_models_d_and_g_terms_move_the_right_way_under_every_loss(model, loss, one_thread):
    """Each update lowers what it minimises: D's loss over D's updates, G's over G's (a sign flipped in
    a loss or a wrong network stepped would raise them)."""
    d, g = d_and_g_losses_over_updates(model, loss)
    assert d[-1] < d[0], f"loss/D went {d}"
    assert g[-1] < g[0], f"loss/G went {g}"


PRESET_SETTINGS = {  # the paper settings the README's table of presets names, key by key
    "gan_mnist": {
        "dataset.name": "mnist", "model.arch": "mlp", "model.g_hidden": [1200, 1200], "model.d_hidden": [240, 240],
        "model.maxout_pieces": 5, "model.dropout": 0.5, "train.batch_size": 100, "train.d_steps": 1,
        "optimizer.generator._target_": "torch.optim.Adam", "optimizer.generator.lr": 2e-4, "optimizer.discriminator.lr": 2e-4,
    },
    "dcgan_mnist": {
        "dataset.name": "mnist", "model.arch": "dcgan", "model.init": "dcgan_normal", "loss.name": "nonsaturating",
        "train.batch_size": 64, "optimizer.generator.lr": 2e-4, "optimizer.generator.betas": [0.5, 0.999],
    },
    "cgan_mnist": {
        "model.name": "cgan", "model.arch": "dcgan", "model.conditional": True, "model.matching_aware": True,
        "train.batch_size": 64, "train.epochs": 2, "optimizer.generator.lr": 1e-3, "optimizer.discriminator.lr": 1e-3,
    },
    "cgan_mnist_paper": {
        "model.name": "cgan", "model.arch": "mlp", "model.conditional": True, "model.matching_aware": False,
        "train.batch_size": 100, "optimizer.generator.lr": 2e-4, "optimizer.discriminator.lr": 2e-4,
    },
    "infogan_mnist": {
        "model.name": "infogan", "model.latent_dim": 62, "model.codes.categorical": [10], "model.codes.continuous": 2,
        "model.codes.weight": 1.0, "optimizer.generator.lr": 1e-3, "optimizer.discriminator.lr": 2e-4,
    },
    "wgan_mnist": {
        "loss.name": "wgan", "loss.clip": 0.01, "optimizer.generator._target_": "torch.optim.RMSprop",
        "optimizer.generator.lr": 5e-5, "optimizer.discriminator.lr": 5e-5, "train.d_steps": 5, "train.batch_size": 64,
    },
    "wgan_gp_mnist": {
        "loss.name": "wgan_gp", "loss.gradient_penalty": 10.0, "model.d_norm": "none", "optimizer.generator.lr": 1e-4,
        "optimizer.discriminator.lr": 1e-4, "optimizer.generator.betas": [0.0, 0.9], "optimizer.discriminator.betas": [0.0, 0.9],
        "train.d_steps": 5,
    },
    "lsgan_mnist": {
        "loss.name": "lsgan", "loss.fake_target": 0.0, "loss.real_target": 1.0, "loss.generator_target": 1.0,
        "optimizer.generator.lr": 2e-4, "optimizer.generator.betas": [0.5, 0.999],
    },
    "hinge_mnist": {
        "loss.name": "hinge", "model.spectral_norm": True, "optimizer.generator.lr": 2e-4,
        "optimizer.discriminator.betas": [0.5, 0.999], "train.d_steps": 1,
    },
    "began_mnist": {
        "dataset.name": "mnist", "model.name": "began", "model.width": 32, "model.depth": 1, "model.latent_dim": 64,
        "model.hidden_dim": 64, "model.gamma": 0.7, "model.lambda_k": 0.02, "model.k_init": 0.0, "optimizer.generator.lr": 2e-4,
        "optimizer.generator.betas": [0.5, 0.999], "train.batch_size": 32, "train.epochs": 2,
    },
    "vaegan_mnist": {
        "dataset.name": "mnist", "model.name": "vaegan", "model.latent_dim": 16, "model.width": 64, "model.d_width": 64,
        "model.d_norm": "batch", "model.feature_layer": 2, "model.gamma": 0.015, "model.beta": 10.0, "model.judge_reconstructions": True,
        "loss.name": "nonsaturating", "optimizer.generator.lr": 2e-4, "train.batch_size": 64, "train.epochs": 4, "train.lr_decay_from": 0.5,
    },
    "vae_mnist": {
        "dataset.name": "mnist", "model.name": "vae", "model.width": 32, "model.latent_dim": 16, "model.likelihood": "bernoulli",
        "model.beta": 1.0, "optimizer.generator.lr": 1e-3, "optimizer.generator.betas": [0.9, 0.999], "train.batch_size": 128,
        "train.epochs": 3,
    },
    "vae_gaussian_mnist": {"model.name": "vae", "model.likelihood": "gaussian", "model.gaussian_std": 1.0, "model.learn_std": False},
    "vae_2stage_mnist": {
        "model.name": "vae", "model.likelihood": "gaussian", "model.learn_std": True, "model.second_stage.steps": 3000,
        "model.second_stage.hidden": 256, "model.second_stage.layers": 2,
    },
    "ae_mnist": {"model.name": "ae", "model.game": "autoencoder", "model.likelihood": "bernoulli", "model.mixture_components": 10},
    "dcgan_fashion_mnist": {"dataset.name": "fashion_mnist", "train.epochs": 10, "train.batch_size": 64, "optimizer.generator.lr": 2e-4},
    "dcgan_cifar10": {
        "dataset.name": "cifar10", "model.g_width": 64, "train.batch_size": 128, "train.epochs": 25,
        "optimizer.generator.lr": 2e-4, "optimizer.generator.betas": [0.5, 0.999],
    },
    "dcgan_celeba64": {"dataset.name": "celeba", "dataset.image_size": 64, "dataset.crop": 140, "train.batch_size": 128, "train.epochs": 5},
    "dcgan_stacked_mnist": {
        "dataset.name": "stacked_mnist", "train.batch_size": 64, "train.epochs": 5, "eval.every": 1000,
        "eval.metrics": ["stacked_modes"], "eval.best": "modes_kl_uniform",
    },
    "gan_gaussians_1d": {
        "dataset.name": "gaussians_1d", "model.latent_dim": 1, "model.g_hidden": [64, 64], "model.d_hidden": [64, 64],
        "model.maxout_pieces": 2, "model.dropout": 0.0, "optimizer.generator.lr": 1e-3, "optimizer.generator.betas": [0.5, 0.999],
        "train.batch_size": 256, "train.steps": 3000,
    },
    "gan_ring_2d": {
        "dataset.name": "ring_2d", "dataset.modes": 8, "dataset.radius": 0.8, "dataset.std": 0.008, "model.latent_dim": 16,
        "model.g_hidden": [128, 128], "model.d_hidden": [128, 128], "optimizer.generator.lr": 1e-3, "train.batch_size": 256,
        "train.steps": 20000, "model.pack": 4, "train.lr_decay_from": 0.5,
    },
    "gan_grid_2d": {
        "dataset.name": "grid_2d", "dataset.grid_size": 5, "dataset.std": 0.01, "model.g_hidden": [128, 128], "train.steps": 20000,
        "model.pack": 2, "train.lr_decay_from": 0.5,
    },
    "cyclegan_mnist": {
        "dataset.domains": ["plain", "invert"], "model.name": "cyclegan", "loss.name": "lsgan", "model.cycle_weight": 10.0,
        "model.identity_weight": 0.5, "model.pool_size": 50, "optimizer.generator.lr": 2e-4,
        "optimizer.generator.betas": [0.5, 0.999], "train.lr_decay_from": 0.5, "train.steps": 2000,
    },
    "cyclegan_mnist_edge": {"dataset.domains": ["plain", "edge"], "model.identity_weight": 0.0, "train.steps": 4000},
    "cyclegan_paper": {
        "dataset.name": "unpaired", "dataset.image_size": 256, "model.g_width": 64, "model.g_blocks": 9, "model.d_width": 64,
        "model.d_downsamplings": 3, "train.batch_size": 1, "train.epochs": 200, "train.lr_decay_from": 0.5,
    },
    "stargan_mnist": {
        "dataset.domains": ["plain", "invert", "edge", "thick", "colour"], "model.name": "stargan", "loss.name": "wgan_gp",
        "loss.gradient_penalty": 10.0, "train.d_steps": 5, "model.classification_weight": 1.0, "model.cycle_weight": 10.0,
        "optimizer.generator.lr": 2e-4, "model.g_width": 32, "train.steps": 3000, "train.lr_decay_from": 0.5,
    },
    "cogan_mnist": {
        "dataset.domains": ["plain", "edge"], "model.name": "cogan", "model.shared_layers": 3, "loss.name": "nonsaturating",
        "optimizer.generator.lr": 1e-3, "train.batch_size": 64, "train.steps": 5000, "train.lr_decay_from": 0.5,
    },
}  # fmt: skip


def selected(cfg, key: str):
    value = OmegaConf.select(cfg, key)
    return OmegaConf.to_container(value) if OmegaConf.is_config(value) else value


@pytest.mark.parametrize("preset", sorted(PRESET_SETTINGS))
def test_every_preset_composes_its_papers_settings(preset):
    cfg = compose_train([f"experiment={preset}"])
    check_train_config(cfg)
    assert {key: selected(cfg, key) for key in PRESET_SETTINGS[preset]} == PRESET_SETTINGS[preset]


def test_every_preset_has_its_settings_listed():
    shipped = {path.stem for path in (Path(__file__).parents[1] / "configs" / "experiment").glob("*.yaml")}
    assert shipped == set(PRESET_SETTINGS)


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_every_preset_runs(tmp_path, mnist_root, preset, one_thread):
    overrides = [f"experiment={preset}", f"dataset.root={mnist_root}", "train.steps=2", "log.every=1",
                 "samples.every=2", "checkpoint.every=2", "log.progress_bar=false"]
    cfg = compose_train(overrides)
    check_train_config(cfg)
    training_loop(cfg, tmp_path, {"overrides": overrides})
    trained = OmegaConf.create(load_checkpoint(tmp_path)["config"])
    assert {key: selected(trained, key) for key in PRESET_SETTINGS[preset]} == PRESET_SETTINGS[preset]  # what it trained with


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


def mean_scores_under_right_and_wrong_labels(matching_aware: bool, updates: int = 100) -> tuple[float, float]:
    """Train a conditional DCGAN's D alone (G fixed) for `updates` steps on labelled blobs (fake data:
    a class is a blob's position), then its mean D(x) on fresh real images under their own labels and
    under wrong ones."""
    overrides = TINY + tiny_model("cgan") + ["train.precision=fp32", "dataset.num_samples=512", "train.batch_size=32"]
    training = build_training(compose_train([*overrides, f"model.matching_aware={matching_aware}"]), torch.device("cpu"), distributed.current())
    state = training.state
    game, G, D = state.game, state.game.networks["G"], state.game.networks["D"]
    for _ in range(updates):
        real, labels = state.data.next()
        inputs = G.sample_inputs(len(real), state.rng, real.device)
        with torch.no_grad():
            fake = G(**inputs)
        game.discriminator_step(state.updates, real, labels, fake, inputs, state.rng, nullcontext)
    real, labels = state.data.next()
    with torch.no_grad():
        D.eval()
        return tuple(torch.sigmoid(D(real, y).logits).mean().item() for y in (labels, game.wrong_labels(labels, state.rng)))


def test_a_matching_aware_discriminator_rejects_real_images_under_wrong_labels(one_thread):
    right, wrong = mean_scores_under_right_and_wrong_labels(matching_aware=True)
    assert wrong < 0.5 * right, (right, wrong)  # measured: 0.45 and 0.06
    right, wrong = mean_scores_under_right_and_wrong_labels(matching_aware=False)
    assert wrong > 0.9 * right, (right, wrong)  # without the term, a wrong label is no reason to reject (1.0 and 1.0)


def test_a_matching_aware_discriminators_loss_counts_mismatched_pairs_as_fakes(one_thread):
    """loss/D of a matching-aware step is the loss of real images against fakes and real images under
    wrong labels (drawn from the latent generator, as the step draws them)."""
    training = build_training(compose_train(TINY + tiny_model("cgan") + ["train.precision=fp32", "model.matching_aware=true"]),
                              torch.device("cpu"), distributed.current())  # fmt: skip
    state = training.state
    game, G, d = state.game, state.game.networks["G"], state.game.networks["D"]
    real, labels = state.data.next()
    inputs = G.sample_inputs(len(real), state.rng, real.device)
    with torch.no_grad():
        fake = G(**inputs)
        rng = state.rng.get_state()
        real_logits, fake_logits = d(real, labels).logits, d(fake, inputs["y"]).logits
        mismatched = d(real, game.wrong_labels(labels, state.rng)).logits
    state.rng.set_state(rng)  # the step draws the same wrong labels
    loss = game.discriminator_step(state.updates, real, labels, fake, inputs, state.rng, nullcontext)["loss/D"].item()
    adversarial = game.objective.adversarial
    assert loss == pytest.approx(adversarial.d_loss(real_logits, torch.cat([fake_logits, mismatched])).item(), rel=1e-5)
    assert loss != pytest.approx(adversarial.d_loss(real_logits, fake_logits).item(), rel=1e-3)  # not the plain loss


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
