"""The GAN families of the classic papers as one game: a generator G against a discriminator D.

GAN, DCGAN, CGAN and InfoGAN, under any of the six losses, with every trick the config turns on:
this is Algorithm 1 of Goodfellow et al. (2014), with the terms each family adds where they belong:
gradient penalties and InfoGAN's Q loss in D's step, the InfoGAN term in G's step, weight clipping
after D's update, a replay buffer of past fakes, matching-aware D for conditional models.

Two remedies for mode collapse change G's step (the other two, packing and the minibatch standard
deviation, are D's architecture: gan_cli.models.minibatch):
- feature matching (Salimans et al. 2016, loss.generator_objective=feature_matching): G's loss is
  the distance between the batch means of D's last hidden features on real and on fake samples;
- an unrolled D (Metz et al. 2017, train.unroll_steps=K): G's loss is taken against a copy of D
  trained K steps ahead, which anticipates how D would answer a G that crowds onto one mode. This
  is the first-order approximation of the paper's method: G's gradient flows through the copy's
  final weights only, not back through its K updates (which would cost second-order gradients).
"""

import torch
from omegaconf import DictConfig
from torch import nn

from gan_cli.data.source import DataShape
from gan_cli.games.base import Game, Precision
from gan_cli.losses import Objective, build_objective
from gan_cli.losses.feature_matching import feature_matching
from gan_cli.losses.regularizers import clip_weights, gradient_penalty, r1_penalty
from gan_cli.models import build_networks
from gan_cli.training.replay import ReplayBuffer
from gan_cli.training.updates import Updates


class AdversarialGame(Game):
    families = ("gan", "dcgan", "cgan", "infogan")
    # D's update comes first in a step: at equal steps the NaN guard names D's failure before G's.
    optimizers = {"discriminator": ("D",), "generator": ("G",)}
    averaged = ("G",)
    sampler = "G"

    def __init__(self, cfg: DictConfig, shape: DataShape):
        self.objective: Objective = build_objective(cfg.loss, cfg.model)
        super().__init__(cfg, shape)
        self.d_steps = cfg.train.d_steps
        self.unroll_steps = cfg.train.unroll_steps
        self.replay = ReplayBuffer(cfg.train.replay_size, cfg.train.replay_fraction) if cfg.train.replay_size else None

    @classmethod
    def build_networks(cls, cfg: DictConfig, shape: DataShape) -> dict[str, nn.Module]:
        penalized = build_objective(cfg.loss, cfg.model).penalizes_input_gradients  # D's norm depends on it
        generator, discriminator = build_networks(cfg.model, shape, penalized)
        return {"G": generator, "D": discriminator}

    def step(self, data, updates: Updates, rng: torch.Generator, precision: Precision) -> dict[str, torch.Tensor]:
        """k discriminator updates on fresh real and fake batches, then one generator update."""
        generator = self.networks["G"]
        for i in range(self.d_steps):
            real, labels = data.next()  # (B, C, H, W) in [-1, 1], (B,) or None
            inputs = generator.sample_inputs(len(real), rng, real.device)  # z (B, latent_dim), y, c
            # The last fake batch keeps its graph: the generator step below reuses it, saving a G pass.
            with torch.set_grad_enabled(i == self.d_steps - 1), precision():
                fake = generator(**inputs)
            d_fake, d_inputs = fake.detach(), inputs
            if self.replay is not None:
                d_fake, d_inputs = self.replay.mix(d_fake, inputs, rng)
            d_scalars = self.discriminator_step(updates, real, labels, d_fake, d_inputs, rng, precision)
        judge = self.unrolled_discriminator(data, updates, rng, precision) if self.unroll_steps else self.networks["D"]
        g_scalars = self.generator_step(updates, judge, real, labels, fake, inputs, precision)
        return {**d_scalars, **g_scalars}

    def discriminator_terms(self, discriminator, real, labels, fake, fake_inputs, rng, precision):
        """D's loss terms on a real batch (with its labels) and a fake batch (with the inputs that made
        it): ({name: 0-d loss}, real logits, fake logits). Shared by D's update and its look-ahead copy's."""
        objective, loss = self.objective, self.objective.adversarial
        with precision():
            real_out = discriminator(real, labels)
            fake_out = discriminator(fake, fake_inputs.get("y"))
            # Matching-aware D (Reed et al. 2016): real images under wrong labels count as fakes too.
            mismatched = discriminator(real, self.wrong_labels(labels, rng)).logits if objective.matching_aware else None
        real_logits, fake_logits = real_out.logits.float(), fake_out.logits.float()  # (B / pack,)
        judged_fake = fake_logits if mismatched is None else torch.cat([fake_logits, mismatched.float()])
        terms = {"loss/D": loss.d_loss(real_logits, judged_fake)}
        # Regularizers on D's input gradients, computed in fp32 outside autocast.
        if objective.gradient_penalty:
            penalty = gradient_penalty(discriminator, real, fake, labels, rng)
            terms["loss/gradient_penalty"] = objective.gradient_penalty * penalty
        if objective.r1:
            terms["loss/r1"] = objective.r1 * r1_penalty(discriminator, real, labels)
        if objective.info is not None:  # Q learns to read the codes back from the fakes
            terms["loss/info_D"] = objective.info(fake_out.codes, fake_inputs["c"])
        return terms, real_logits, fake_logits

    def discriminator_step(self, updates: Updates, real, labels, fake, fake_inputs, rng, precision):
        """One update of D on a real batch (with its labels) and a fake batch (with the inputs that made it)."""
        discriminator, loss = self.networks["D"], self.objective.adversarial
        terms, real_logits, fake_logits = self.discriminator_terms(discriminator, real, labels, fake, fake_inputs, rng, precision)
        updates.apply("discriminator", sum(terms.values()))
        self.clip_weights(discriminator)
        scalars = {
            **{name: value.detach() for name, value in terms.items()},
            "D(x)": loss.score(real_logits).mean().detach(),
            "D(G(z))": loss.score(fake_logits).mean().detach(),  # on the fakes D trained on, before its update
        }
        if loss.critic:  # E[D(x)] - E[D(G(z))]: the critic's estimate of the Wasserstein distance
            scalars["critic/wasserstein_estimate"] = (real_logits.mean() - fake_logits.mean()).detach()
        return scalars

    def clip_weights(self, discriminator) -> None:
        """WGAN: clipped weights keep the critic (roughly) Lipschitz; nothing for the other losses."""
        if self.objective.clip is not None:
            clip_weights(discriminator, self.objective.clip)

    def unrolled_discriminator(self, data, updates: Updates, rng, precision) -> nn.Module:
        """Metz et al. 2017: a copy of D (and of its optimizer's state) after K more updates of its own,
        on fresh real batches and fresh fakes of the current G, by the same terms as D's update. D and
        its optimizer are left as they are. First-order: the copy's weights are constants to G."""
        generator = self.networks["G"]
        lookahead = updates.lookahead("discriminator", "D")
        for _ in range(self.unroll_steps):
            real, labels = data.next()
            inputs = generator.sample_inputs(len(real), rng, real.device)
            with torch.no_grad(), precision():
                fake = generator(**inputs)
            terms, _, _ = self.discriminator_terms(lookahead.network, real, labels, fake, inputs, rng, precision)
            lookahead.apply(sum(terms.values()))
            self.clip_weights(lookahead.network)
        return lookahead.network.requires_grad_(False)  # G's step computes no weight gradients of the copy

    def generator_step(self, updates: Updates, judge, real, labels, fake, inputs, precision) -> dict[str, torch.Tensor]:
        """One update of G through `judge`'s judgement of `fake` (which carries G's graph): `judge` is D,
        or its unrolled copy. Feature matching also reads the `real` batch (with its labels)."""
        with updates.frozen("D"):  # only G's gradients are needed: skip D's weight grads
            with precision():
                out = judge(fake, inputs.get("y"))
            if self.objective.feature_matching:
                with torch.no_grad(), precision():  # the real side is a target, with no graph to keep
                    real_features = judge(real, labels).features
                g_loss = feature_matching(real_features.float(), out.features.float())
            else:
                g_loss = self.objective.adversarial.g_loss(out.logits.float())
            terms = {"loss/G": g_loss}
            if self.objective.info is not None:  # G learns to make its codes readable: the InfoGAN term
                terms["loss/info_G"] = self.objective.info(out.codes, inputs["c"])
            updates.apply("generator", sum(terms.values()))
        return {name: value.detach() for name, value in terms.items()}

    def wrong_labels(self, labels: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        """Each label shifted to a different class, uniformly among the others."""
        classes = self.networks["D"].num_classes
        shift = torch.randint(1, classes, labels.shape, generator=rng, device=labels.device)
        return (labels + shift) % classes

    def state_dict(self) -> dict:
        return {"replay": self.replay.state_dict() if self.replay is not None else None}

    def load_state_dict(self, state: dict, device: torch.device) -> None:
        if self.replay is not None and state.get("replay") is not None:
            self.replay.load_state_dict(state["replay"], device)
