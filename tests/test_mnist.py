"""A few hundred real steps on the real MNIST (from GAN_DATA_ROOT): the game gets going."""

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from tests.helpers import compose_train
from gan_cli.training.loop import training_loop


@pytest.mark.slow
def test_dcgan_learns_on_real_mnist(mnist_root, tmp_path):
    overrides = [
        f"dataset.root={mnist_root}",
        "dataset.download=false",
        "train.steps=300",
        "train.batch_size=64",
        "log.every=50",
        "log.progress_bar=false",
        "samples.every=300",
        "checkpoint.every=300",
        "eval.n=1000",  # evaluated at the last step (MNIST runs are evaluated by default)
    ]
    best_fid = training_loop(compose_train(overrides), tmp_path, {"overrides": overrides})
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    real = [e.value for e in events.Scalars("D(x)")]
    fake = [e.value for e in events.Scalars("D(G(z))")]
    assert len(real) == 6
    assert all(r > f for r, f in zip(real, fake))  # D tells real from fake all along...
    assert fake[-1] > 0.05  # ...but G's samples are not hopeless
    assert (tmp_path / "samples" / "step_0000300.png").is_file()
    assert (tmp_path / "checkpoints" / "last.pt").is_file()
    (evaluation,) = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert evaluation["step"] == 300 and evaluation["n"] == 1000 and evaluation["fid"] == best_fid
    assert 1 < best_fid < 500  # far from real digits (about 1 at n=1000) after 300 steps, and from noise (about 3600)
    assert (tmp_path / "checkpoints" / "best.pt").is_file()
