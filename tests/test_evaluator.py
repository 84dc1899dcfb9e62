"""The shipped evaluator: accurate on MNIST, checked when loaded, and rebuilt bit for bit by its script."""

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

import gan_cli.metrics.evaluator as evaluator_module
from gan_cli.data.mnist import load_mnist
from gan_cli.errors import GanError
from gan_cli.metrics.classes import label_accuracy
from gan_cli.metrics.evaluator import EVALUATOR_SHA256, load_evaluator, score_images
from gan_cli.sampling.files import from_uint8

ROOT = Path(__file__).parents[1]


def test_classifies_the_mnist_test_set(mnist_root):
    images, labels = load_mnist(str(mnist_root), "test", download=False)
    scores = score_images(load_evaluator(), from_uint8(images))
    assert scores.features.shape == (10_000, 128) and scores.probs.shape == (10_000, 10)
    assert label_accuracy(scores.probs, labels) >= 0.99


def test_weights_that_are_not_the_recorded_ones_are_refused(monkeypatch):
    monkeypatch.setattr(evaluator_module, "EVALUATOR_SHA256", "0" * 64)
    with pytest.raises(GanError, match="the file was altered or replaced, and metrics computed with it would not be comparable"):
        load_evaluator()


def test_shipped_file_is_small_and_has_the_recorded_hash():
    raw = (ROOT / "gan_cli" / "metrics" / "evaluator.pt").read_bytes()
    assert hashlib.sha256(raw).hexdigest() == EVALUATOR_SHA256
    assert len(raw) < 1_000_000


@pytest.mark.slow
def test_training_script_reproduces_the_shipped_weights(mnist_root, tmp_path):
    out = tmp_path / "evaluator.pt"
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "train_evaluator.py"), "--out", str(out), "--data-root", str(mnist_root)],
        check=True,
        timeout=1800,
    )
    assert hashlib.sha256(out.read_bytes()).hexdigest() == EVALUATOR_SHA256
