"""The metrics: hand-built inputs with known answers, and real MNIST through the shipped evaluator."""

import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torchvision.transforms.functional import gaussian_blur

import gan_cli.metrics.suite as suite_module
from gan_cli.data.mnist import load_mnist
from gan_cli.errors import GanError
from gan_cli.metrics.classes import code_accuracy, inception_score, label_accuracy, mode_coverage
from gan_cli.metrics.evaluator import Scores, load_evaluator, score_images
from gan_cli.metrics.frechet import feature_statistics, fid, frechet_distance
from gan_cli.metrics.kernel import kid
from gan_cli.metrics.manifold import precision_recall
from gan_cli.metrics.reference import reference_scores
from gan_cli.metrics.suite import METRICS, VALUES, MetricSuite, compute_metrics, improves, evaluation_problems
from gan_cli.models.base import Generator
from gan_cli.models.codes import CodeSpec
from gan_cli.sampling.files import from_uint8

ROOT = Path(__file__).parents[1]
N = 2000  # real images per set: enough for stable values, a second or two to score


# --- hand-built inputs -----------------------------------------------------------------------------


def test_frechet_distance_of_known_gaussians():
    # Diagonal covariances commute: d² = |mu_a - mu_b|² + sum (sqrt(a_i) - sqrt(b_i))²
    mu_a, mu_b = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64), torch.tensor([1.0, 1.0, 0.0], dtype=torch.float64)
    var_a, var_b = torch.tensor([1.0, 4.0, 9.0], dtype=torch.float64), torch.tensor([4.0, 4.0, 1.0], dtype=torch.float64)
    expected = 1 + 0 + 4 + (1 - 2) ** 2 + 0 + (3 - 1) ** 2
    assert frechet_distance((mu_a, torch.diag(var_a)), (mu_b, torch.diag(var_b))) == pytest.approx(expected, abs=1e-9)


def test_frechet_distance_with_full_covariances_matches_the_trace_formula():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 6, generator=g, dtype=torch.float64) @ torch.randn(6, 6, generator=g, dtype=torch.float64)
    b = torch.randn(500, 6, generator=g, dtype=torch.float64) + 0.5
    (mu_a, s_a), (mu_b, s_b) = feature_statistics(a), feature_statistics(b)
    # tr((S_a S_b)^½) from the eigenvalues of the (non-symmetric) product: real and positive
    trace_sqrt = torch.linalg.eigvals(s_a @ s_b).real.clamp(min=0).sqrt().sum()
    expected = ((mu_a - mu_b) ** 2).sum() + s_a.trace() + s_b.trace() - 2 * trace_sqrt
    assert fid(a, b) == pytest.approx(expected.item(), rel=1e-8)
    assert fid(a, b) == pytest.approx(fid(b, a), rel=1e-9)


def test_fid_with_fewer_samples_than_dimensions_takes_the_small_eigenproblem_to_the_same_value():
    g = torch.Generator().manual_seed(0)
    a = torch.randn(20, 64, generator=g, dtype=torch.float64) @ torch.randn(64, 64, generator=g, dtype=torch.float64)
    b = torch.randn(30, 64, generator=g, dtype=torch.float64) + 0.3
    full = frechet_distance(feature_statistics(a), feature_statistics(b))  # 64 x 64 eigendecompositions
    assert fid(a, b) == pytest.approx(full, rel=1e-8)  # a 20 x 20 one
    assert fid(b, a) == pytest.approx(full, rel=1e-8)
    assert fid(a, a) == pytest.approx(0, abs=1e-8 * full)


def test_kid_separates_shifted_samples_and_not_equal_ones():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(2000, 8, generator=g), torch.randn(2000, 8, generator=g)
    same_mean, same_std = kid(a, b, num_subsets=50, subset_size=500)
    shifted_mean, _ = kid(a, b + 1, num_subsets=50, subset_size=500)
    assert abs(same_mean) < same_std
    assert shifted_mean > 10 * same_std


def test_inception_score_bounds():
    one_hot = torch.eye(10).repeat(100, 1)  # confident and all classes equally: the maximum, 10
    assert inception_score(one_hot)[0] == pytest.approx(10, rel=1e-6)
    one_class = torch.zeros(1000, 10)
    one_class[:, 3] = 1  # confident but one class: the minimum, 1
    assert inception_score(one_class)[0] == pytest.approx(1, rel=1e-6)
    assert inception_score(torch.full((1000, 10), 0.1))[0] == pytest.approx(1, rel=1e-6)  # no confidence


def test_mode_coverage_counts_classes_and_measures_their_spread():
    uniform = mode_coverage(torch.eye(10).repeat(50, 1))
    assert uniform["classes_covered"] == 10
    assert uniform["class_entropy"] == pytest.approx(math.log(10))
    assert uniform["class_kl_uniform"] == pytest.approx(0, abs=1e-12)
    # one digit, and 1.5% misread as another: still 1 of 10
    predicted = torch.full((1000,), 7)
    predicted[:15] = 1
    collapsed = mode_coverage(torch.nn.functional.one_hot(predicted, 10).float())
    assert collapsed["classes_covered"] == 1
    assert collapsed["class_kl_uniform"] > 2.2  # near log 10 = 2.30


def test_label_accuracy():
    probs = torch.nn.functional.one_hot(torch.tensor([0, 1, 2, 3]), 10).float()
    assert label_accuracy(probs, torch.tensor([0, 1, 2, 9])) == 0.75


def test_code_accuracy_uses_the_best_one_to_one_mapping():
    codes = torch.arange(1000) % 10
    permutation = torch.tensor([3, 7, 0, 1, 9, 2, 8, 4, 6, 5])
    assert code_accuracy(codes, permutation[codes]) == 1.0  # unnamed codes that separate digits perfectly
    predicted = permutation[codes].clone()
    predicted[:100] = (predicted[:100] + 1) % 10  # 10% errors
    assert code_accuracy(codes, predicted) == pytest.approx(0.9)
    assert code_accuracy(codes, torch.zeros(1000, dtype=torch.long)) == pytest.approx(0.1)  # one class: one code maps


def test_every_metric_value_has_a_direction_and_the_choice_is_checked():
    g = torch.Generator().manual_seed(0)
    scores = Scores(torch.randn(60, 16, generator=g), torch.softmax(torch.randn(60, 10, generator=g), 1))
    for name, metric in METRICS.items():
        assert set(metric(scores, scores, 0)) == set(VALUES[name]), name
    assert evaluation_problems(["fid", "kid"], 100, "kid", "eval.") == []
    assert evaluation_problems(["fid", "lpips"], 20_000, "precision", "eval.") == [
        "eval.metrics: 'lpips' is not a metric; use any of fid, kid, is, precision_recall, coverage, stacked_modes, reconstruction",
        "eval.n=20000 must be 10 to 10000 (the real-data floor uses as many MNIST test images)",
        "eval.best='precision' is not a value of eval.metrics=['fid', 'lpips']; use one of fid or add its metric "
        "to eval.metrics",
    ]
    assert improves("fid", 1.0, 2.0) and not improves("fid", 3.0, 2.0) and improves("recall", 0.9, 0.8)
    assert improves("kid", 5.0, None)


# --- real MNIST through the shipped evaluator ------------------------------------------------------


@pytest.fixture(scope="module")
def evaluator():
    return load_evaluator()


@pytest.fixture(scope="module")
def real(evaluator, mnist_root):
    """Scores of N test and N training images, and the test images themselves (N, 1, 28, 28) in [-1, 1]."""
    test_images, test_labels = load_mnist(str(mnist_root), "test", download=False)
    return {
        "test": reference_scores(evaluator, str(mnist_root), "test", N),
        "train": reference_scores(evaluator, str(mnist_root), "train", N),
        "images": from_uint8(test_images[:N]),
        "labels": test_labels[:N],
    }


def test_fid_is_zero_against_itself_symmetric_and_small_between_real_splits(real):
    test, train = real["test"].features, real["train"].features
    assert fid(test, test) == pytest.approx(0, abs=1e-6)
    assert fid(test, train) == pytest.approx(fid(train, test), rel=1e-6)
    assert fid(test, train) < 1


@pytest.mark.parametrize("damage", ["blur", "noise"])
def test_fid_grows_with_blur_and_noise(evaluator, real, damage):
    g = torch.Generator().manual_seed(0)
    images = real["images"]

    def damaged(level):
        if damage == "blur":
            return gaussian_blur(images, kernel_size=9, sigma=level) if level else images
        return (images + level * torch.randn(images.shape, generator=g)).clamp(-1, 1)

    levels = [0, 0.5, 1.0, 2.0] if damage == "blur" else [0, 0.2, 0.5, 1.0]
    fids = [fid(score_images(evaluator, damaged(level)).features, real["train"].features) for level in levels]
    assert fids == sorted(fids) and fids[-1] > 10 * fids[0] + 5, fids


def test_kid_of_two_halves_of_the_test_set_is_zero_within_its_std(evaluator, real):
    features = real["test"].features
    mean, std = kid(features[: N // 2], features[N // 2 :], subset_size=500)
    assert abs(mean) < std
    noise = torch.rand(N // 2, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    noise_mean, _ = kid(features[: N // 2], score_images(evaluator, noise).features, subset_size=500)
    assert noise_mean > 10 * std


def test_kid_std_is_a_real_spread_when_n_is_at_most_the_subset_size(real):
    # At n = 500 the default subsets (1000) used to be the whole set every time: std ~1e-15.
    test, train = real["test"].features, real["train"].features
    small_mean, small_std = kid(test[:500], train[:500])  # subsets of 250 (half the set)
    large_mean, large_std = kid(test, train)  # n = 2000: subsets of 1000, as before
    assert abs(small_mean) < small_std and abs(large_mean) < large_std  # real vs real: 0 within its spread
    # Smaller subsets spread more (about 5x here: the estimate's variance falls with the subset size),
    # but on the same scale as at n = 2000: a spread, not round-off.
    assert 2 * large_std < small_std < 20 * large_std, (small_std, large_std)
    assert kid(test[:1000], train[:1000])[1] > large_std  # n = 1000 exactly: subsets of 500, not the whole set
    with pytest.raises(ValueError, match="at least 4 samples"):
        kid(test[:3], train[:3])


def test_precision_recall_high_for_real_data_low_for_noise(evaluator, real):
    precision, recall = precision_recall(real["train"].features, real["test"].features)
    assert precision > 0.75 and recall > 0.75
    noise = torch.rand(N, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 2 - 1
    precision, recall = precision_recall(real["train"].features, score_images(evaluator, noise).features)
    assert precision < 0.05 and recall < 0.05


class ReplayGenerator(Generator):
    """A stand-in generator that 'generates' given real images: z's first entry picks one.

    With `labels`, it behaves like a conditional model: it draws a requested label `y` per image and
    returns a real image of that label.
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor | None = None):
        super().__init__(latent_dim=4)
        self.images, self.labels = images, labels
        self.num_classes = 10 if labels is not None else 0
        self.anchor = torch.nn.Parameter(torch.zeros(()))  # generate() asks for the device of a parameter

    def sample_inputs(self, n, rng=None, device=None, labels=None):
        inputs = super().sample_inputs(n, rng, device)
        if self.num_classes:
            inputs["y"] = torch.randint(10, (n,), generator=rng) if labels is None else labels
        return inputs

    def forward(self, z, y=None):
        index = (z[:, 0].abs() * 1e4).long() % len(self.images)
        if y is None:
            return self.images[index]
        same_label = [torch.nonzero(self.labels == label).flatten() for label in y.tolist()]
        return self.images[torch.stack([rows[i % len(rows)] for rows, i in zip(same_label, index.tolist())])]


def test_one_digit_generator_covers_1_of_10_classes(mnist_root):
    images, labels = load_mnist(str(mnist_root), "test", download=False)
    sevens = from_uint8(images[labels == 7])  # 1028 real sevens
    suite = MetricSuite(["coverage", "is", "fid"], 1000, 0, str(mnist_root), torch.device("cpu"))
    evaluation = suite.evaluate_generator(ReplayGenerator(sevens))
    assert evaluation.values["classes_covered"] == 1 and evaluation.floor["classes_covered"] == 10
    assert evaluation.values["class_kl_uniform"] > 2.2 and evaluation.floor["class_kl_uniform"] < 0.05
    assert evaluation.values["is"] < 1.2 and evaluation.floor["is"] > 9
    assert evaluation.values["fid"] > 50 * evaluation.floor["fid"]
    assert "label_accuracy" not in evaluation.values


def test_conditional_generator_gets_label_accuracy(real, mnist_root):
    suite = MetricSuite(["fid"], 500, 0, str(mnist_root), torch.device("cpu"))
    faithful = suite.evaluate_generator(ReplayGenerator(real["images"], real["labels"]))
    assert faithful.values["label_accuracy"] > 0.97 and faithful.floor["label_accuracy"] > 0.97
    ignores_labels = suite.evaluate_generator(ReplayGenerator(real["images"], real["labels"][torch.randperm(N)]))
    assert ignores_labels.values["label_accuracy"] < 0.2


class CodeGenerator(Generator):
    """A stand-in InfoGAN generator: its 10-way code picks the digit, through a fixed shuffle of the
    classes (code value k draws digit `classes[k]`), as a trained InfoGAN's unnamed code values do."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, classes: list[int]):
        super().__init__(latent_dim=4, codes=CodeSpec(categorical=(10,)))
        self.by_class = [images[labels == digit] for digit in classes]
        self.anchor = torch.nn.Parameter(torch.zeros(()))

    def forward(self, z, c=None):
        codes = c.argmax(dim=1).tolist()
        picks = (z[:, 0].abs() * 1e4).long().tolist()
        return torch.stack([self.by_class[k][i % len(self.by_class[k])] for k, i in zip(codes, picks)])


def test_infogan_code_accuracy_uses_the_best_mapping(real, mnist_root):
    suite = MetricSuite(["fid"], 500, 0, str(mnist_root), torch.device("cpu"))
    shuffled = [3, 7, 0, 9, 1, 4, 8, 2, 6, 5]
    readable = suite.evaluate_generator(CodeGenerator(real["images"], real["labels"], shuffled))
    assert readable.values["code_accuracy"] > 0.97 and readable.floor["code_accuracy"] > 0.97
    assert "label_accuracy" not in readable.values
    collapsed = suite.evaluate_generator(CodeGenerator(real["images"], real["labels"], [1] * 10))
    assert collapsed.values["code_accuracy"] < 0.2  # one digit for every code value: one value can map to it


def test_same_seed_same_numbers(real, mnist_root):
    generator = ReplayGenerator(real["images"])
    values = [
        MetricSuite(["fid", "kid"], 300, seed, str(mnist_root), torch.device("cpu"))
        .evaluate_generator(generator)
        .values
        for seed in (0, 0, 1)
    ]
    assert values[0] == values[1]
    assert values[0]["kid"] != values[2]["kid"]


def test_reference_is_cached_per_split_and_count(evaluator, mnist_root, metrics_cache):
    first = reference_scores(evaluator, str(mnist_root), "test", 123)
    (cached,) = metrics_cache.glob("mnist_test_123_*.pt")
    second = reference_scores(evaluator, "/nonexistent", "test", 123)  # from the cache: no data needed
    assert torch.equal(first.features, second.features) and torch.equal(first.labels, second.labels)
    cached.write_bytes(b"garbage")  # a damaged cache is computed again, not an error
    assert torch.equal(reference_scores(evaluator, str(mnist_root), "test", 123).features, first.features)


def test_the_real_data_floor_is_cached_per_metric_set_count_and_seed(mnist_root, monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_CLI_CACHE", str(tmp_path))
    computed = []  # the metric sets compute_metrics ran for: one per floor not found in the cache
    original = suite_module.compute_metrics
    monkeypatch.setattr(suite_module, "compute_metrics", lambda names, *args: computed.append(names) or original(names, *args))
    cpu = torch.device("cpu")

    first = MetricSuite(["fid", "kid"], 200, 0, str(mnist_root), cpu)
    (floor_file,) = tmp_path.glob("floor_*.pt")
    assert "_200_fid-kid_seed0_" in floor_file.name and first.floor["kid_std"] > 0
    again = MetricSuite(["kid", "fid"], 200, 0, "/nonexistent", cpu)  # reference and floor cached: no data read
    assert again.floor == first.floor and len(computed) == 1

    MetricSuite(["fid", "kid"], 200, 1, str(mnist_root), cpu)  # another seed: other KID subsets
    MetricSuite(["fid"], 200, 0, str(mnist_root), cpu)  # another metric set
    assert len(computed) == 3 and len(list(tmp_path.glob("floor_*.pt"))) == 3

    floor_file.write_bytes(b"garbage")  # a damaged floor is computed again, not an error
    assert MetricSuite(["fid", "kid"], 200, 0, str(mnist_root), cpu).floor == first.floor and len(computed) == 4


def test_a_cache_that_cannot_be_written_costs_time_not_the_evaluation(mnist_root, monkeypatch, tmp_path, caplog):
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    monkeypatch.setenv("GAN_CLI_CACHE", str(tmp_path / "cache"))
    suite = MetricSuite(["fid"], 50, 0, str(mnist_root), torch.device("cpu"))
    assert suite.floor["fid"] > 0
    assert "set GAN_CLI_CACHE to a writable folder" in caplog.text


def test_suite_refuses_sample_counts_without_a_floor_and_a_missing_reference(mnist_root, monkeypatch, tmp_path):
    monkeypatch.setenv("GAN_CLI_CACHE", str(tmp_path))  # an empty cache: the reference must be read
    with pytest.raises(GanError, match="n=20000 must be 10 to 10000"):
        MetricSuite(["fid"], 20_000, 0, str(mnist_root), torch.device("cpu"))
    with pytest.raises(GanError, match="the metrics compare with real MNIST, which was not found"):
        MetricSuite(["fid"], 100, 0, "/nonexistent", torch.device("cpu"))


def test_compute_metrics_of_a_set_against_itself(real):
    test = real["test"]
    part = Scores(test.features[:500], test.probs[:500], test.labels[:500])
    values = compute_metrics(list(METRICS), part, part, seed=0)
    assert values["fid"] == pytest.approx(0, abs=1e-6)
    assert values["precision"] == values["recall"] == 1.0
    assert values["label_accuracy"] > 0.99  # real["test"] carries the true labels


def test_stacked_modes_is_used_alone():
    assert evaluation_problems(["stacked_modes"], 100, "modes_kl_uniform", "eval.") == []
    assert evaluation_problems(["stacked_modes", "fid"], 100, "fid", "eval.") == [
        "eval.metrics: stacked_modes scores 3-channel Stacked MNIST and the others 1x28x28 images: use stacked_modes alone"
    ]


def test_benchmark_script_prints_fid_and_kid_of_an_untrained_generator(mnist_root, tmp_path):
    # The script builds its generator from the composed model config: a key added later cannot break it.
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "benchmark_metrics.py"), "--n", "200", "--repeats", "1",
         "--data-root", str(mnist_root)],
        cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr
    line = re.search(r"^run 1: FID (\S+), KID (\S+) in (\S+) s \((under|OVER) 15 s", result.stdout, re.MULTILINE)
    assert line, result.stdout
    fid_value, kid_value = float(line[1]), float(line[2])
    assert fid_value > 100 and kid_value > 1  # untrained blobs are far from digits (the real-data floor is ~1)
    assert list(tmp_path.iterdir()) == []  # its cache is a temporary folder
