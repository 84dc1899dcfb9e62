"""Translation metrics on constructed translators: the true transform scores perfectly, a translator
that ignores its input scores the floor, one that hides its input in low bits is caught; and the
shipped domain evaluator reads every derived domain."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import gan_cli.metrics.domain_evaluator as domain_evaluator_module
from gan_cli.data.domain_transforms import TRANSFORMS, to_domain
from gan_cli.data.domains import DomainTestSet
from gan_cli.data.mnist import load_mnist
from gan_cli.errors import GanError
from gan_cli.metrics.domain_evaluator import DOMAIN_EVALUATOR_SHA256, load_domain_evaluator, score_domains
from gan_cli.metrics.translation import evaluate_translation, probe
from gan_cli.sampling.files import from_uint8

ROOT = Path(__file__).parents[1]
N = 200
HIDING_STEP = 1 / 32  # the steganographer's visible grid; its hidden copy lives below it


@pytest.fixture(scope="module")
def digits(mnist_root):
    images, labels = load_mnist(str(mnist_root), "test", download=False)
    return images[:N], labels[:N]


@pytest.fixture(scope="module")
def plain_invert(digits) -> DomainTestSet:
    images, labels = digits
    return DomainTestSet(["plain", "invert"], {name: to_domain(images, name) for name in ("plain", "invert")}, labels, paired=True)


@pytest.fixture(scope="module")
def evaluator():
    torch.set_num_threads(1)
    return load_domain_evaluator()


def invert(x: torch.Tensor, source: int, target: int) -> torch.Tensor:
    """The true plain <-> invert translation, both ways."""
    return -x


def hide(x: torch.Tensor, source: int, target: int) -> torch.Tensor:
    """plain -> invert that looks right on a grid of HIDING_STEP and carries the plain digit below it;
    invert -> plain reads the hidden copy back. A perfect cycle with a cheating translation."""
    unit = (x + 1) / 2
    if source == 0:
        coarse = ((1 - unit) / HIDING_STEP).floor().clamp(max=1 / HIDING_STEP - 1) * HIDING_STEP
        return (coarse + unit * 0.9 * HIDING_STEP) * 2 - 1
    hidden = (unit - (unit / HIDING_STEP).floor() * HIDING_STEP) / (0.9 * HIDING_STEP)
    return hidden.clamp(0, 1) * 2 - 1


def test_the_true_transform_scores_perfectly(plain_invert, evaluator):
    result = evaluate_translation(invert, plain_invert, evaluator=evaluator)
    v = result.values
    assert result.pairs == ["plain->invert", "invert->plain"] and result.n == {"plain": N, "invert": N}
    for pair, target in (("plain->invert", "invert"), ("invert->plain", "plain")):
        assert v[f"{pair}/label_preservation"] == pytest.approx(v[f"real/{target}/label_accuracy"])
        assert v[f"{pair}/label_preservation"] >= 0.97
        assert v[f"{pair}/domain_accuracy"] >= 0.99
        assert v[f"{pair}/paired_l1"] < 1e-6 and v[f"{pair}/paired_agreement"] == 1.0
        assert v[f"{pair}/paired_l1_floor"] > 0.1 and v[f"{pair}/paired_agreement_floor"] < 0.9
        assert v[f"{pair}/cycle_l1"] < 1e-6 and v[f"{pair}/cycle_l1_probe"] < 0.03
        assert v[f"{pair}/fid"] < 1e-3
    assert result.hidden == []
    assert v["mean/label_preservation"] == pytest.approx(
        (v["plain->invert/label_preservation"] + v["invert->plain/label_preservation"]) / 2
    )
    report = "\n".join(result.lines())
    assert "plain->invert" in report and "worst pair by label_preservation" in report and "hidden" not in report


def test_a_translator_that_ignores_its_input_scores_the_floor(plain_invert, evaluator):
    """Identity: right digits, wrong domain, far from the truth. Another digit's true counterpart: the
    right domain, but the digit and the pixels of an unrelated pair."""
    v = evaluate_translation(lambda x, s, t: x, plain_invert, evaluator=evaluator).values
    assert v["plain->invert/domain_accuracy"] <= 0.01
    assert v["plain->invert/paired_agreement"] <= v["plain->invert/paired_agreement_floor"]
    assert v["plain->invert/fid"] > 10

    v = evaluate_translation(lambda x, s, t: -x.roll(1, 0), plain_invert, evaluator=evaluator).values
    assert v["plain->invert/domain_accuracy"] >= 0.99
    assert v["plain->invert/label_preservation"] <= 0.25  # chance: about 0.1
    assert v["plain->invert/paired_agreement"] == pytest.approx(v["plain->invert/paired_agreement_floor"], abs=0.02)
    assert v["plain->invert/paired_l1"] == pytest.approx(v["plain->invert/paired_l1_floor"], rel=0.1)


def test_a_translator_hiding_its_input_in_low_bits_is_flagged(plain_invert, evaluator):
    result = evaluate_translation(hide, plain_invert, evaluator=evaluator)
    v = result.values
    assert v["plain->invert/cycle_l1"] < 0.005  # the cycle alone says all is well ...
    assert v["plain->invert/cycle_l1_probe"] > 0.1  # ... until the invisible detail is gone
    assert "plain->invert" in result.hidden
    assert any(line.startswith("plain->invert: information is hidden in the translation") for line in result.lines())


def test_the_probe_keeps_sixteen_levels_and_adds_seeded_noise():
    x = torch.linspace(-1, 1, 1000).reshape(10, 1, 10, 10)
    a, b = probe(x, seed=1), probe(x, seed=1)
    assert torch.equal(a, b) and not torch.equal(a, probe(x, seed=2))
    assert a.min() >= -1 and a.max() <= 1
    assert ((a - x) / 2).abs().mean() < 0.04  # 4-bit rounding (at most 1/30) and noise of std 0.02


def test_domains_the_evaluator_cannot_read_get_the_cycle_and_paired_metrics_only():
    """dataset=unpaired's A and B: any images, no labels, no pairs."""
    generator = torch.Generator().manual_seed(0)
    images = {name: torch.randint(0, 256, (8, 3, 16, 16), generator=generator, dtype=torch.uint8) for name in "AB"}
    result = evaluate_translation(lambda x, s, t: x, DomainTestSet(["A", "B"], images, None, paired=False))
    assert set(result.values) == {f"{p}/{m}" for p in ("A->B", "B->A", "mean") for m in ("cycle_l1", "cycle_l1_probe")}
    assert result.values["A->B/cycle_l1"] == 0.0
    assert len(result.lines()) == 7  # title, header, two pairs, mean, the worst by cycle_l1 and by cycle_l1_probe


def test_bad_translations_and_sizes_are_refused(plain_invert, evaluator):
    wrong_size = lambda x, s, t: torch.nn.functional.interpolate(x, size=32)  # noqa: E731
    with pytest.raises(GanError, match=r"the translation plain->invert gave images of shape 200x1x32x32 for a batch of 200, but the test images of its target domain are 1x28x28"):
        evaluate_translation(wrong_size, plain_invert, evaluator=evaluator)
    with pytest.raises(GanError, match=r"n=201 is more than the 200 test images the smallest domain has"):
        evaluate_translation(invert, plain_invert, n=201, evaluator=evaluator)
    with pytest.raises(GanError, match=r"n=1: translation metrics need at least 2 test images"):
        evaluate_translation(invert, plain_invert, n=1, evaluator=evaluator)
    with pytest.raises(GanError, match=r"scores images of shape 1x28x28 or 3x28x28 .* not 1x32x32"):
        score_domains(evaluator, torch.zeros(2, 1, 32, 32))


@pytest.mark.parametrize("name", TRANSFORMS)
def test_the_domain_evaluator_reads_every_derived_domain(digits, evaluator, name):
    images, labels = digits
    scores = score_domains(evaluator, from_uint8(to_domain(images, name, 3)))
    assert scores.features.shape == (N, 128)
    assert (scores.digits == labels).float().mean() >= 0.97
    # (0.8: the domain head confuses plain and thin most, 94% and 90% right on all 10,000: README)
    assert (scores.domain_logits.argmax(1) == list(TRANSFORMS).index(name)).float().mean() >= 0.8


def test_domain_evaluator_weights_are_checked(monkeypatch):
    raw = (ROOT / "gan_cli" / "metrics" / "domain_evaluator.pt").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == DOMAIN_EVALUATOR_SHA256 and len(raw) < 1_000_000
    monkeypatch.setattr(domain_evaluator_module, "DOMAIN_EVALUATOR_SHA256", "0" * 64)
    with pytest.raises(GanError, match="the domain evaluator's weights .* the file was altered or replaced"):
        load_domain_evaluator()


@pytest.mark.rebuild  # 10 minutes: outside CI's slow set (README, "Tests")
def test_training_script_reproduces_the_shipped_weights(mnist_root, tmp_path):
    out = tmp_path / "domain_evaluator.pt"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_domain_evaluator.py"), "--out", str(out), "--data-root", str(mnist_root)],
        check=True,
        timeout=1800,
    )
    assert hashlib.sha256(out.read_bytes()).hexdigest() == DOMAIN_EVALUATOR_SHA256
