"""Metrics of a pair generator (model=cogan): do the two images drawn from one z show the same thing?

For n pairs (first, second), one image of each of two MNIST-derived domains per latent:

- pair_agreement: the share of pairs in which the domain evaluator reads the same digit in both
  images, beside pair_agreement_floor, the same between unrelated pairs (a shuffled order): two
  independent generators score about the floor (0.1 for balanced digits);
- pixel_agreement, pixel_l1 (when one domain is plain and the other a fixed transform of it: invert,
  edge, thick, thin, rot90, colour): the other image against the true transform of the plain one,
  both binarised at 0.5 for the agreement (the paper's pixel agreement ratio), beside their floors;
- <domain>/domain_accuracy: the share of each side's images the evaluator puts in its own domain;
- <domain>/fid: FID of each side's images against that domain's real test images, on the evaluator's
  features; fid: their mean.
"""

from dataclasses import dataclass

import torch
from torch import nn

from gan_cli.data.domain_transforms import to_domain
from gan_cli.data.domains import DomainTestSet
from gan_cli.errors import GanError
from gan_cli.metrics.domain_evaluator import DOMAINS, DomainEvaluator, load_domain_evaluator, score_domains
from gan_cli.metrics.frechet import fid
from gan_cli.metrics.translation import domain_accuracy, paired_error, unrelated_order
from gan_cli.sampling.files import from_uint8, to_uint8
from gan_cli.sampling.inputs import generate, seeded_inputs

HIGHER_IS_BETTER = {"pair_agreement": True, "pixel_agreement": True, "pixel_l1": False, "fid": False}
PLAIN = "plain"


@dataclass
class PairResult:
    values: dict[str, float]
    domains: list[str]
    n: int

    def lines(self) -> list[str]:
        """The printable report: each value, floors beside."""
        lines = [f"pair metrics of {self.n} generated pairs ({' / '.join(self.domains)}; chance floors in brackets)"]
        for name, value in self.values.items():
            if not name.endswith("_floor"):
                floor = self.values.get(f"{name}_floor")
                lines.append(f"{name:<28}{value:.4f}" + (f"  ({floor:.4f})" if floor is not None else ""))
        return lines


def split_pairs(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Pairs side by side (N, C, S, 2S) -> (first, second), (N, C, S, S) each."""
    size = images.shape[2]
    return images[..., :size], images[..., size:]


def true_counterpart(plain: torch.Tensor, domain: str) -> torch.Tensor:
    """Generated plain digits (N, C, 28, 28) in [-1, 1] -> the true transform into `domain`, same shape."""
    grey = to_uint8(plain[:, :1])  # a colour set repeats grey domains over its channels
    return from_uint8(to_domain(grey, domain, plain.shape[1]))


def real_features(test_set: DomainTestSet, evaluator: DomainEvaluator) -> dict[str, torch.Tensor]:
    """Domain -> the evaluator's features (N, FEATURE_DIM) of its test images: what FID compares with
    (computed once per training run)."""
    return {name: score_domains(evaluator, from_uint8(images)).features for name, images in test_set.images.items()}


def pair_metrics(first: torch.Tensor, second: torch.Tensor, domains: list[str], real: dict[str, torch.Tensor],
                 evaluator: DomainEvaluator, seed: int = 0) -> dict[str, float]:
    """Every pair metric of the pairs (first[i], second[i]) (N, C, 28, 28) each, in [-1, 1], drawn in
    `domains` (two); FID against the `real` features of each domain's test images."""
    scores = [score_domains(evaluator, images) for images in (first, second)]
    shuffled = unrelated_order(len(first), seed)
    values = {
        "pair_agreement": (scores[0].digits == scores[1].digits).double().mean().item(),
        "pair_agreement_floor": (scores[0].digits == scores[1].digits[shuffled]).double().mean().item(),
    }
    if PLAIN in domains:
        plain = domains.index(PLAIN)
        other = 1 - plain
        if domains[other] != "colour_random":  # a random colour per image has no one true counterpart
            images = (first, second)
            truth = true_counterpart(images[plain], domains[other])
            paired = paired_error(images[other], truth, seed)
            values |= {name.replace("paired", "pixel"): value for name, value in paired.items()}
    for name, side in zip(domains, scores):
        values[f"{name}/domain_accuracy"] = domain_accuracy(side, name, domains)
        values[f"{name}/fid"] = fid(side.features, real[name])
    values["fid"] = sum(values[f"{name}/fid"] for name in domains) / len(domains)
    return values


def evaluate_pairs(generator: nn.Module, test_set: DomainTestSet, n: int, seed: int = 0,
                   evaluator: DomainEvaluator | None = None, real: dict[str, torch.Tensor] | None = None) -> PairResult:
    """The pair metrics of n pairs the pair generator draws from `seed`, in eval mode; `real`: the
    test images' features (real_features), computed here when not given."""
    if n < 2:
        raise GanError(f"n={n}: pair metrics need at least 2 pairs (the floors, FID)")
    unknown = [name for name in test_set.domains if name not in DOMAINS]
    if unknown:
        raise GanError(f"the pair metrics read MNIST-derived domains (dataset=mnist_domains); the model's domains "
                       f"{', '.join(unknown)} are not ones the domain evaluator knows")
    device = next(generator.parameters()).device
    evaluator = evaluator or load_domain_evaluator(device)
    real = real if real is not None else real_features(test_set, evaluator)
    first, second = split_pairs(generate(generator, seeded_inputs(generator, n, seed)))
    return PairResult(pair_metrics(first, second, list(test_set.domains), real, evaluator, seed), list(test_set.domains), n)
