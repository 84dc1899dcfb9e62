"""Metrics of image-to-image translation, per ordered domain pair a -> b, that catch a translator cheating.

Given `translate(x, source, target)` (x (N, C, H, W) in [-1, 1]; source, target: indices into the test
set's domains) and a DomainTestSet (gan_cli.data.domains), for each pair a -> b:

- label_preservation: the domain evaluator's digit on translations of a's test images vs their labels
  (a translator that ignores its input, or turns 8s into 5s, scores low; needs labels);
- domain_accuracy: the share of translations the evaluator's domain head puts in b, read among the
  test set's domains (the question a StarGAN asks: which of these domains is it in?);
- paired_l1, paired_agreement (paired sets only): mean absolute difference in [0, 1] units and pixel
  agreement (both binarised at 0.5) against the true counterparts, beside paired_*_floor, the same
  between unrelated true counterparts (a shuffled order): a translator that ignores its input scores
  the floor;
- cycle_l1: L1 of x against back(translate(x)); cycle_l1_probe: the same when translate(x) is
  quantised to 16 levels and given Gaussian noise of std 0.02 before the way back. An honest
  translation loses almost nothing to this; one that hides x in invisible detail (steganography, Chu
  et al. 2017) loses the hidden copy, and the pair is reported in `hidden`;
- fid: FID of the translations against b's real test images, on the domain evaluator's features.
  On a paired set these are the true counterparts themselves, so the true transform scores 0.

The evaluator's metrics need MNIST-derived domains (1 or 3 x 28 x 28, names of domain_transforms); on
other domains (dataset=unpaired) only the paired and cycle metrics are computed. All distances are in
[0, 1] intensity units: half the [-1, 1] ones.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import torch

from gan_cli.data.domains import DomainTestSet
from gan_cli.errors import GanError
from gan_cli.metrics.domain_evaluator import (
    CHANNELS, DOMAINS, IMAGE_SIZE, DomainEvaluator, DomainScores, load_domain_evaluator, score_domains
)
from gan_cli.metrics.frechet import fid
from gan_cli.sampling.files import from_uint8

Translate = Callable[[torch.Tensor, int, int], torch.Tensor]

PROBE_LEVELS = 16  # 4 bits
PROBE_NOISE_STD = 0.02  # [0, 1] units
HIDDEN_RATIO = 2.0  # the probe's cycle error this many times the plain one ...
HIDDEN_MARGIN = 0.05  # ... and this much above it: information is hidden in the translation
# The ranked metrics (their worst pair is named), in the report's column order.
HIGHER_IS_BETTER = {"label_preservation": True, "domain_accuracy": True, "paired_agreement": True,
                    "paired_l1": False, "cycle_l1": False, "cycle_l1_probe": False, "fid": False}


def label_preservation(scores: DomainScores, labels: torch.Tensor) -> float:
    """Share of translations whose digit (scores of N translations) is their source's label (N,)."""
    return (scores.digits == labels).double().mean().item()


def domain_accuracy(scores: DomainScores, target: str, domains: list[str]) -> float:
    """Share of translations the domain head puts in `target`, choosing among `domains`."""
    return (scores.domain_of(domains) == domains.index(target)).double().mean().item()


def _l1(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean absolute difference of images in [-1, 1], in [0, 1] units."""
    return (x - y).abs().mean().item() / 2


def _agreement(x: torch.Tensor, y: torch.Tensor) -> float:
    """Share of pixel values on the same side of 0.5 (0 in [-1, 1] units)."""
    return ((x > 0) == (y > 0)).double().mean().item()


def unrelated_order(n: int, seed: int) -> torch.Tensor:
    """(n,) int64: a seeded random order with no image in its own place (a random cycle through all n):
    image i is compared with partner[i], never itself."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    partner = torch.empty_like(order)
    partner[order] = order.roll(1)
    return partner


def paired_error(translated: torch.Tensor, truth: torch.Tensor, seed: int = 0) -> dict[str, float]:
    """L1 and pixel agreement of translations (N, C, H, W) against their true counterparts (same shape),
    both in [-1, 1], beside the chance floor: the same between truth and a shuffled truth (N >= 2)."""
    unrelated = truth[unrelated_order(len(truth), seed)]
    return {
        "paired_l1": _l1(translated, truth),
        "paired_agreement": _agreement(translated, truth),
        "paired_l1_floor": _l1(unrelated, truth),
        "paired_agreement_floor": _agreement(unrelated, truth),
    }


def probe(translated: torch.Tensor, seed: int = 0) -> torch.Tensor:
    """Translations (N, C, H, W) in [-1, 1] quantised to PROBE_LEVELS levels and given Gaussian noise of
    std PROBE_NOISE_STD ([0, 1] units; seeded), clamped to [-1, 1]: what survives a visible-detail budget."""
    unit = ((translated.clamp(-1, 1) + 1) / 2 * (PROBE_LEVELS - 1)).round() / (PROBE_LEVELS - 1)
    noise = torch.randn(translated.shape, generator=torch.Generator().manual_seed(seed)) * PROBE_NOISE_STD
    return ((unit + noise.to(unit.device)) * 2 - 1).clamp(-1, 1)


def cycle_error(x: torch.Tensor, translated: torch.Tensor, back: Callable[[torch.Tensor], torch.Tensor], seed: int = 0) -> dict[str, float]:
    """L1 of x (N, C, H, W) against back(translated), and against back(probe(translated))."""
    return {"cycle_l1": _l1(back(translated), x), "cycle_l1_probe": _l1(back(probe(translated, seed)), x)}


def hides_information(cycle_l1: float, cycle_l1_probe: float) -> bool:
    """The round trip needs what the probe destroys: much more error without the invisible detail."""
    return cycle_l1_probe > HIDDEN_RATIO * cycle_l1 and cycle_l1_probe - cycle_l1 > HIDDEN_MARGIN


@dataclass
class TranslationResult:
    """The metrics of every ordered pair, their means and worst pairs, and the pairs caught hiding."""

    values: dict[str, float]  # "plain->invert/label_preservation", ..., "mean/<metric>", "real/<domain>/<accuracy>"
    pairs: list[str]  # "plain->invert", ... in the order evaluated
    worst_pair: dict[str, str]  # ranked metric -> the pair that scores worst on it
    hidden: list[str]  # pairs whose translations hide information (the cycle probe's jump)
    n: dict[str, int]  # test images used per domain

    def lines(self) -> list[str]:
        """The printable report: one row per pair, the means, the worst pairs, the evaluator's accuracy
        on the real test images (the ceiling of label_preservation and domain_accuracy), any hiding."""
        sizes = " / ".join(map(str, sorted(set(self.n.values()))))
        lines = [f"translation metrics on {sizes} test images per domain (L1 in [0, 1] units; chance floors in brackets)"]
        columns = [metric for metric in HIGHER_IS_BETTER if f"mean/{metric}" in self.values]
        lines.append(f"{'pair':<24}" + "".join(f"{metric:>20}" for metric in columns))
        for row in self.pairs + ["mean"]:
            lines.append(f"{row:<24}" + "".join(f"{self._cell(row, metric):>20}" for metric in columns))
        lines += [f"worst pair by {metric}: {pair} ({self.values[f'{pair}/{metric}']:.4f})" for metric, pair in self.worst_pair.items()]
        real = {key.removeprefix("real/"): value for key, value in self.values.items() if key.startswith("real/")}
        if real:
            lines.append("the evaluator on the real test images: " + ", ".join(f"{key} {value:.4f}" for key, value in real.items()))
        for pair in self.hidden:
            lines.append(
                f"{pair}: information is hidden in the translation: the cycle's L1 {self.values[f'{pair}/cycle_l1']:.4f} "
                f"becomes {self.values[f'{pair}/cycle_l1_probe']:.4f} when the translation is quantised to 4 bits and given "
                f"noise of std {PROBE_NOISE_STD} before the way back"
            )
        return lines

    def _cell(self, row: str, metric: str) -> str:
        value = self.values.get(f"{row}/{metric}")
        if value is None:
            return "-"
        floor = self.values.get(f"{row}/{metric}_floor")
        return f"{value:.4f}" + (f" ({floor:.4f})" if floor is not None else "")


def _translate_all(translate: Translate, x: torch.Tensor, source: int, target: int, expected: tuple[int, ...],
                   pair: str, batch_size: int, device: torch.device | str) -> torch.Tensor:
    """translate() over x (N, C, H, W) in batches on `device`, collected on the CPU as float32; images of
    any shape but `expected` (C, H, W) are refused, naming the pair."""
    out = []
    for batch in x.split(batch_size):
        y = translate(batch.to(device), source, target)
        if tuple(y.shape) != (len(batch), *expected):
            raise GanError(
                f"the translation {pair} gave images of shape {'x'.join(map(str, y.shape))} for a batch of "
                f"{len(batch)}, but the test images of its target domain are {'x'.join(map(str, expected))}"
            )
        out.append(y.float().cpu())
    return torch.cat(out)


def _scoreable(test_set: DomainTestSet) -> bool:
    """Whether the domain evaluator can read every domain of the set."""
    return all(name in DOMAINS for name in test_set.domains) and all(
        x.shape[1] in (1, CHANNELS) and tuple(x.shape[2:]) == (IMAGE_SIZE, IMAGE_SIZE) for x in test_set.images.values()
    )


def _test_images(test_set: DomainTestSet, n: int | None) -> dict[str, torch.Tensor]:
    """The first n test images of each domain (all with n None), float in [-1, 1]; n is checked."""
    if n is not None and n < 2:
        raise GanError(f"n={n}: translation metrics need at least 2 test images per domain (FID, the floors)")
    smallest = min(len(x) for x in test_set.images.values())
    if n is not None and n > smallest:
        raise GanError(f"n={n} is more than the {smallest} test images the smallest domain has; use n <= {smallest}")
    return {name: from_uint8(test_set.images[name][:n]) for name in test_set.domains}


@torch.no_grad()
def evaluate_translation(translate: Translate, test_set: DomainTestSet, n: int | None = None, batch_size: int = 500,
                         device: torch.device | str = "cpu", seed: int = 0,
                         evaluator: DomainEvaluator | None = None) -> TranslationResult:
    """Every metric of every ordered pair of test_set.domains on its first n test
    images per domain (all with n None). `evaluator` defaults to the shipped domain evaluator on
    `device`, loaded only when the domains are ones it reads; `seed` fixes the floors' order and the
    probe's noise."""
    images = _test_images(test_set, n)
    labels = None if test_set.labels is None else test_set.labels[:n]
    real, values = {}, {}
    if _scoreable(test_set):
        evaluator = evaluator or load_domain_evaluator(device)
        real = {name: score_domains(evaluator, x, batch_size) for name, x in images.items()}
        for name, scores in real.items():
            if labels is not None:
                values[f"real/{name}/label_accuracy"] = label_preservation(scores, labels)
            values[f"real/{name}/domain_accuracy"] = domain_accuracy(scores, name, test_set.domains)
    pairs = [(a, b) for a in range(len(test_set.domains)) for b in range(len(test_set.domains)) if a != b]
    for a, b in pairs:
        source, target = test_set.domains[a], test_set.domains[b]
        x, truth = images[source], images[target]
        translated = _translate_all(translate, x, a, b, tuple(truth.shape[1:]), f"{source}->{target}", batch_size, device)
        back = partial(_translate_all, translate, source=b, target=a, expected=tuple(x.shape[1:]),
                       pair=f"{target}->{source}", batch_size=batch_size, device=device)
        metrics = cycle_error(x, translated, back, seed)
        if test_set.paired:
            metrics |= paired_error(translated, truth, seed)
        if real:
            scores = score_domains(evaluator, translated, batch_size)
            if labels is not None:
                metrics["label_preservation"] = label_preservation(scores, labels)
            metrics["domain_accuracy"] = domain_accuracy(scores, target, test_set.domains)
            metrics["fid"] = fid(scores.features, real[target].features)
        values |= {f"{source}->{target}/{metric}": value for metric, value in metrics.items()}
    names = [f"{test_set.domains[a]}->{test_set.domains[b]}" for a, b in pairs]
    return _summarise(values, names, {name: len(x) for name, x in images.items()})


def _summarise(values: dict[str, float], pairs: list[str], n: dict[str, int]) -> TranslationResult:
    """Add each metric's mean over the pairs; find each ranked metric's worst pair and the pairs hiding."""
    worst = {}
    for metric in sorted({key.split("/", 1)[1] for key in values if key.split("/", 1)[0] in pairs}):
        values[f"mean/{metric}"] = sum(values[f"{pair}/{metric}"] for pair in pairs) / len(pairs)
    for metric, higher_is_better in HIGHER_IS_BETTER.items():
        if f"mean/{metric}" in values:
            worst[metric] = (min if higher_is_better else max)(pairs, key=lambda pair: values[f"{pair}/{metric}"])
    hidden = [pair for pair in pairs if hides_information(values[f"{pair}/cycle_l1"], values[f"{pair}/cycle_l1_probe"])]
    return TranslationResult(values, pairs, worst, hidden, n)
