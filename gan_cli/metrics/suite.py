"""A metric set scored against the cached MNIST reference, with the real-data floor beside it.

Used by gan-eval and by the evaluations during training. Each metric name produces one or more
values (KID gives `kid` and `kid_std`); VALUES says which way each value improves, so any of them
can pick the best checkpoint. FeatureSuite is what every suite shares (MetricSuite here, and
gan_cli.metrics.inception_suite's InceptionSuite): scoring images, the metrics, the floor beside them.
"""

from dataclasses import dataclass

import torch

from gan_cli.errors import GanError
from gan_cli.metrics.classes import code_accuracy, inception_score, label_accuracy, mode_coverage
from gan_cli.metrics.evaluator import EVALUATOR_SHA256, IMAGE_SHAPE, Scores, load_evaluator, score_images
from gan_cli.metrics.frechet import fid
from gan_cli.metrics.kernel import kid
from gan_cli.metrics.manifold import precision_recall
from gan_cli.metrics.reference import cache_dir, load_or_compute, reference_scores
from gan_cli.models.base import Generator
from gan_cli.sampling.inputs import generate, seeded_inputs

REFERENCE = "mnist/train"  # generated images are compared with these real images
FLOOR = "mnist/test"  # the real-data floor: real images that no generator made, against the same reference
MAX_N = 10_000  # the test split's size: the floor always uses as many images as the result
MIN_N = 10  # fewer cannot fit a k-NN ball (k = 3) or a covariance meaningfully
# Stacked MNIST's floor stacks triples of the test digits, as many stacks as asked: more than the test
# split, for the 1,000 modes (PacGAN counts them in 26,000 samples).
STACKED_MAX_N = 100_000
FLOOR_VERSION = 1  # in the floor cache's file names: raise it when a metric's computation changes


def _fid(generated: Scores, reference: Scores, seed: int) -> dict[str, float]:
    return {"fid": fid(generated.features, reference.features)}


def _kid(generated: Scores, reference: Scores, seed: int) -> dict[str, float]:
    mean, std = kid(generated.features, reference.features, seed=seed)
    return {"kid": mean, "kid_std": std}


def _inception_score(generated: Scores, reference: Scores, seed: int) -> dict[str, float]:
    mean, std = inception_score(generated.probs)
    return {"is": mean, "is_std": std}


def _precision_recall(generated: Scores, reference: Scores, seed: int) -> dict[str, float]:
    precision, recall = precision_recall(reference.features, generated.features)
    return {"precision": precision, "recall": recall}


def _coverage(generated: Scores, reference: Scores, seed: int) -> dict[str, float]:
    return mode_coverage(generated.probs)


METRICS = {
    "fid": _fid,
    "kid": _kid,
    "is": _inception_score,
    "precision_recall": _precision_recall,
    "coverage": _coverage,
}
FEATURE_METRICS = ("fid", "kid", "precision_recall")  # need only features; the others need class posteriors
# metric -> {each value it gives: True when higher is better, False when lower is, None for a spread}
VALUES = {
    "fid": {"fid": False},
    "kid": {"kid": False, "kid_std": None},
    "is": {"is": True, "is_std": None},
    "precision_recall": {"precision": True, "recall": True},
    "coverage": {"classes_covered": True, "class_entropy": True, "class_kl_uniform": False},
    # Stacked MNIST's modes (gan_cli.metrics.stacked), computed by their own suite on 3x28x28 images
    "stacked_modes": {"modes_captured": True, "modes_kl_uniform": False},
    # The encoder families' reconstructions of MNIST test images (gan_cli.metrics.reconstruction; gan-eval only)
    "reconstruction": {"reconstruction_mse": False, "reconstruction_accuracy": True},
}


def evaluation_problems(
    metrics: list[str], n: int, best: str | None, prefix: str = "", features: str = "evaluator"
) -> list[str]:
    """Problems with a metric list, a sample count and the value that picks the best checkpoint, each
    named by its key (`<prefix>metrics`, ...). `features`: evaluator (the shipped MNIST classifier) or
    inception (no class posteriors; the real images' count is checked when they are read)."""
    problems = [
        f"{prefix}metrics: {name!r} is not a metric; use any of {', '.join(VALUES)}" for name in metrics if name not in VALUES
    ]
    if "stacked_modes" in metrics and len(metrics) > 1:
        problems.append(
            f"{prefix}metrics: stacked_modes scores 3-channel Stacked MNIST and the others 1x28x28 images: "
            "use stacked_modes alone"
        )
    if features == "inception":
        posteriors = [name for name in metrics if name in VALUES and name not in FEATURE_METRICS]
        if posteriors:
            problems.append(
                f"{prefix}metrics: {', '.join(posteriors)} need{'s' if len(posteriors) == 1 else ''} class posteriors, "
                "which only the shipped MNIST evaluator gives (features=evaluator); with features=inception use "
                f"{', '.join(FEATURE_METRICS)}"
            )
        if n < MIN_N:
            problems.append(f"{prefix}n={n} must be at least {MIN_N}")
    elif metrics == ["stacked_modes"]:
        if not MIN_N <= n <= STACKED_MAX_N:
            problems.append(f"{prefix}n={n} must be {MIN_N} to {STACKED_MAX_N} for stacked_modes")
    elif not MIN_N <= n <= MAX_N:
        problems.append(f"{prefix}n={n} must be {MIN_N} to {MAX_N} (the real-data floor uses as many MNIST test images)")
    if best is not None:
        rankable = [value for name in metrics for value, higher in VALUES.get(name, {}).items() if higher is not None]
        if best not in rankable:
            problems.append(
                f"{prefix}best={best!r} is not a value of {prefix}metrics={list(metrics)}; use one of {', '.join(rankable)} "
                f"or add its metric to {prefix}metrics"
            )
    return problems


def higher_is_better(name: str) -> bool:
    """Which way the metric value `name` (fid, kid, is, precision, ...) improves."""
    return next(values[name] for values in VALUES.values() if name in values)


def improves(name: str, value: float, best: float | None) -> bool:
    """Whether `value` of the metric value `name` beats `best` (None: nothing to beat)."""
    return best is None or (value > best if higher_is_better(name) else value < best)


def compute_metrics(names: list[str], generated: Scores, reference: Scores, seed: int) -> dict[str, float]:
    """The values of the metrics `names` for `generated` against `reference`; plus label accuracy
    when `generated` carries labels, and code accuracy when it carries InfoGAN codes."""
    values = {}
    for name in names:
        values.update(METRICS[name](generated, reference, seed))
    if generated.labels is not None:
        values["label_accuracy"] = label_accuracy(generated.probs, generated.labels)
    if generated.codes is not None:
        values["code_accuracy"] = code_accuracy(generated.codes, generated.probs.argmax(1))
    return values


def cached_floor(real_data: str, n: int, names: list[str], seed: int, compute) -> dict[str, float]:
    """The real-data floor `compute()` gives, from the cache when there. `real_data` names the real
    sets and the network that scores them; with n, the metric names and the seed (KID's subsets)
    it is all the values depend on, and it names the cache file."""
    path = cache_dir() / f"floor_{real_data}_{n}_{'-'.join(sorted(names))}_seed{seed}_v{FLOOR_VERSION}.pt"
    return load_or_compute(path, lambda: _plain_values(compute()), _floor_values)


def _plain_values(values: dict) -> dict[str, float | int]:
    """Python numbers only (code accuracy is a numpy float): what torch.load(weights_only=True) reads back."""
    return {name: value if isinstance(value, int) else float(value) for name, value in values.items()}


def _floor_values(stored: dict) -> dict[str, float | int]:
    if not isinstance(stored, dict) or not all(type(value) in (int, float) for value in stored.values()):
        raise TypeError("not a dict of metric values")
    return stored


@dataclass
class Evaluation:
    """The values of one evaluation and the real-data floor of each."""

    values: dict[str, float]
    floor: dict[str, float]
    n: int
    reference: str = REFERENCE
    floor_images: str = FLOOR
    note: str | None = None  # what the floor is, when not the default


    def table(self) -> list[str]:
        """Lines of a table: value, real-data floor, n, reference."""
        rows = [("metric", "value", "real-data floor", "n", "reference")]
        rows += [
            (name, _number(value), _number(self.floor[name]), str(self.n), self.reference) for name, value in self.values.items()
        ]
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        note = self.note or f"real-data floor: {self.n} {self.floor_images} images against the same {self.n} {self.reference} images"
        return lines + [note]

    def record(self) -> dict:
        """A JSON-ready summary."""
        return {
            "n": self.n,
            "reference": self.reference,
            "floor_images": self.floor_images,
            "metrics": {name: {"value": value, "floor": self.floor[name]} for name, value in self.values.items()},
        }


def merged(evaluations: list[Evaluation]) -> Evaluation:
    """One Evaluation of the values of several (the first's n, reference and note; the others'
    notes follow in the table)."""
    first = evaluations[0]
    notes = [evaluation.table()[-1] for evaluation in evaluations]
    return Evaluation(
        {name: value for evaluation in evaluations for name, value in evaluation.values.items()},
        {name: value for evaluation in evaluations for name, value in evaluation.floor.items()},
        first.n, first.reference, first.floor_images, "\n".join(notes),
    )


def _number(value: float) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


class FeatureSuite:
    """Scores sets of n images with the metrics `names` against reference Scores, beside the floor.

    A subclass sets `names`, `n`, `seed`, `reference` (Scores of n real images), `floor` (the metric
    values of n other real images) and the table's names of both, and says how images are scored.
    """

    names: list[str]
    n: int
    seed: int
    reference: Scores
    floor: dict[str, float]
    reference_name: str = REFERENCE
    floor_name: str = FLOOR
    has_posteriors = True  # whether score() gives class posteriors (then labels and codes are scored)

    def score(self, images: torch.Tensor) -> Scores:
        raise NotImplementedError

    def evaluate_images(
        self, images: torch.Tensor, labels: torch.Tensor | None = None, codes: torch.Tensor | None = None
    ) -> Evaluation:
        """Metrics of images (n, C, H, W) in [-1, 1], with the labels they were generated for and the
        values of their first categorical code, if any (scored only with class posteriors)."""
        if len(images) != self.n:
            raise ValueError(f"{len(images)} images given to a suite for n={self.n}")
        scores = self.score(images)
        if self.has_posteriors:
            scores.labels, scores.codes = labels, codes
        values = compute_metrics(self.names, scores, self.reference, self.seed)
        floor = {name: self.floor[name] for name in values}
        return Evaluation(values, floor, self.n, reference=self.reference_name, floor_images=self.floor_name)

    def evaluate_generator(self, generator: Generator, batch_size: int = 500) -> Evaluation:
        """Metrics of n images drawn from `seed` (the same latents every time)."""
        inputs = seeded_inputs(generator, self.n, self.seed)
        images = generate(generator, inputs, batch_size)
        codes = generator.codes.split_codes(inputs["c"])[0][0] if generator.codes.categorical else None
        return self.evaluate_images(images, inputs.get("y"), codes)


class MetricSuite(FeatureSuite):
    """Scores sets of n images (n, 1, 28, 28) with the metrics `names` against n real MNIST training
    images, through the shipped evaluator."""

    image_shape = IMAGE_SHAPE

    def __init__(self, names: list[str], n: int, seed: int, data_root: str, device: torch.device):
        problems = evaluation_problems(names, n, None)
        if problems:
            raise GanError("; ".join(problems))
        self.names, self.n, self.seed = list(names), n, seed
        self.evaluator = load_evaluator(device)
        self.reference = reference_scores(self.evaluator, data_root, "train", n)
        # The floor costs as much as an evaluation (KID's subsets, the k-NN balls): computed once.
        self.floor = cached_floor(
            f"mnist-test-vs-train_{EVALUATOR_SHA256[:16]}", n, self.names, seed, lambda: self._floor(data_root)
        )

    def _floor(self, data_root: str) -> dict[str, float]:
        real = reference_scores(self.evaluator, data_root, "test", self.n)
        # `real` carries its true labels, read as labels and as a code: the floor of label_accuracy and
        # code_accuracy is the evaluator's own accuracy.
        real.codes = real.labels
        return compute_metrics(self.names, real, self.reference, self.seed)

    def score(self, images: torch.Tensor) -> Scores:
        return score_images(self.evaluator, images)
