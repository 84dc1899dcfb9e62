"""VAE-GAN (model=vaegan): the gradient split of its three updates, checked against gradients taken
by hand, the feature layer, and real runs that resume bit for bit, sample, reconstruct and evaluate."""

import pytest
import torch

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games.vaegan import VAEGANGame, feature_error
from gan_cli.losses.likelihood import kl_to_standard_normal
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.updates import Updates
from gan_cli.validation import check_train_config
from tests.helpers import TINY, assert_same_training, compose_train, resume_tiny, train_checked

TINY_VAEGAN = ["model=vaegan", "model.width=8", "model.d_width=8", "model.latent_dim=4"]
SHAPE = DataShape((1, 28, 28))
FP32 = lambda: torch.autocast("cpu", enabled=False)  # noqa: E731  (the step's precision: none)


def train_vaegan(run_dir, overrides=()):
    train_checked(run_dir, TINY + TINY_VAEGAN + list(overrides))


def test_feature_error_is_half_the_squared_distance():
    a, b = torch.tensor([[1.0, 2.0], [0.0, 0.0]]), torch.tensor([[0.0, 0.0], [3.0, 0.0]])
    assert feature_error(a, b).tolist() == [2.5, 4.5]


def test_the_discriminator_shows_layer_l_and_its_logits_in_one_pass():
    cfg = compose_train(TINY + TINY_VAEGAN)
    discriminator = VAEGANGame.build_networks(cfg, SHAPE)["D"].eval()
    x = torch.randn(3, 1, 28, 28)
    assert discriminator.num_layers == 2
    logits_1, features_1 = discriminator.judge(x, 1)
    logits_2, features_2 = discriminator.judge(x, 2)
    assert features_1.shape == (3, 8 * 14 * 14) and features_2.shape == (3, 16 * 7 * 7)
    assert torch.equal(logits_1, logits_2) and torch.allclose(logits_1, discriminator(x).logits)


class RecordingUpdates(Updates):
    """Updates that record each optimizer's gradients instead of stepping (the networks stay as they are)."""

    def __init__(self, networks, optimizers):
        self.networks, self.updated, self.grads = networks, optimizers, {}

    def apply(self, name, loss):
        params = [p for network in self.updated[name] for p in self.networks[network].parameters()]
        for p in params:
            p.grad = None
        loss.backward()
        self.grads[name] = [p.grad.clone() if p.grad is not None else torch.zeros_like(p) for p in params]


class Batch:
    def __init__(self, x):
        self.x = x

    def next(self):
        return self.x, None


def by_hand(loss, network):
    return list(torch.autograd.grad(loss, list(network.parameters()), allow_unused=True, retain_graph=True))


def test_the_gradient_split_is_the_papers():
    """encoder: grad(beta KL + L_llike), with no GAN part; decoder: gamma grad(L_llike) + grad(GAN's generator
    side); D: grad(GAN's discriminator side). The gradients the step applies, against gradients by hand."""
    gamma, beta = 0.3, 4.0
    cfg = compose_train(TINY + TINY_VAEGAN + [f"model.gamma={gamma}", f"model.beta={beta}"])
    torch.manual_seed(0)
    game = VAEGANGame(cfg, SHAPE)
    encoder, decoder, discriminator = (game.networks[name] for name in ("encoder", "decoder", "D"))
    x = torch.rand(8, 1, 28, 28) * 2 - 1
    updates = RecordingUpdates(game.networks, game.optimizers)
    game.step(Batch(x), updates, torch.Generator().manual_seed(5), FP32)

    # The same draws by hand: eps for z ~ q(z|x), then the prior codes.
    rng = torch.Generator().manual_seed(5)
    mean, log_var = encoder(x)
    z = mean + torch.exp(0.5 * log_var) * torch.randn(mean.shape, generator=rng)
    z_prior = torch.randn(8, 4, generator=rng)
    with torch.no_grad():
        _, real_features = discriminator.judge(x, 2)
    reconstructed = decoder(z)
    rec_logits, rec_features = discriminator.judge(reconstructed, 2)
    prior_logits, _ = discriminator.judge(decoder(z_prior), 2)
    llike = feature_error(rec_features, real_features).mean()
    kl = kl_to_standard_normal(mean, log_var)
    gan_g = game.adversarial.g_loss(torch.cat([prior_logits, rec_logits]))

    encoder_expected = [beta * a + b for a, b in zip(by_hand(kl, encoder), by_hand(llike, encoder))]
    encoder_gan = by_hand(gan_g, encoder)
    assert sum(g.abs().sum() for g in encoder_gan) > 1e-6  # the GAN term would reach the encoder, were it not cut
    for got, want in zip(updates.grads["encoder"], encoder_expected):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)
    decoder_expected = [gamma * a + b for a, b in zip(by_hand(llike, decoder), by_hand(gan_g, decoder))]
    for got, want in zip(updates.grads["generator"], decoder_expected):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)
    with torch.no_grad():
        fakes = torch.cat([decoder(z_prior), reconstructed])
    real_logits, _ = discriminator.judge(x, 2)
    fake_logits, _ = discriminator.judge(fakes, 2)
    d_expected = by_hand(game.adversarial.d_loss(real_logits, fake_logits), discriminator)
    for got, want in zip(updates.grads["discriminator"], d_expected):
        assert torch.allclose(got, want, rtol=1e-4, atol=1e-6)


def test_without_judged_reconstructions_d_sees_only_prior_samples():
    cfg = compose_train(TINY + TINY_VAEGAN + ["model.judge_reconstructions=false"])
    game = VAEGANGame(cfg, SHAPE)
    updates = RecordingUpdates(game.networks, game.optimizers)
    seen = []
    judge = game.networks["D"].judge
    game.networks["D"].judge = lambda images, layer: (seen.append(len(images)), judge(images, layer))[1]
    game.step(Batch(torch.rand(8, 1, 28, 28) * 2 - 1), updates, torch.Generator().manual_seed(0), FP32)
    assert seen == [8, 8, 8, 8, 8, 8]  # target, encoder, decoder (reconstructions, prior), D (real, prior only)


def test_vaegan_trains_and_resumes_bit_identically(tmp_path):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_vaegan(straight)
    train_vaegan(split, ["train.steps=3"])
    resume_tiny(split, ["train.steps=6"])
    a, b = load_checkpoint(straight), load_checkpoint(split)
    assert a["step"] == 6
    assert_same_training(a, b)
    assert set(a["networks"]) == {"encoder", "decoder", "D"} and set(a["optimizers"]) == {"encoder", "generator", "discriminator"}
    assert (split / "samples" / "step_0000006_reconstructions.png").exists()


@pytest.mark.parametrize(
    "override, message",
    [("loss=wgan_gp", "loss=wgan_gp: model=vaegan trains its D without"), ("train.d_steps=2", "train.d_steps=2"),
     ("model.feature_layer=3", "model.feature_layer=3 must be between 1 and 2"), ("dataset=ring_2d", "holds points")],
)
def test_combinations_that_cannot_work_are_refused(override, message):
    with pytest.raises(GanError, match=message):
        check_train_config(compose_train(TINY + TINY_VAEGAN + [override]))


def test_vaegan_preset_trains_on_mnist(tmp_path, mnist_root):
    overrides = ["experiment=vaegan_mnist", f"dataset.root={mnist_root}", "train.steps=2", "log.every=1", "samples.every=2",
                 "checkpoint.every=2", "eval.every=null", "log.progress_bar=false"]
    train_checked(tmp_path, overrides)
    assert load_checkpoint(tmp_path)["config"]["model"]["game"] == "vaegan"
