"""The presets of the new datasets run a few real steps on tiny data in their on-disk formats, and
Stacked MNIST's mode metrics work in training, in gan-eval and on real digits."""

import json
import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.data.mnist import load_mnist
from gan_cli.data.stacked_mnist import stack_indices, triple_labels
from gan_cli.metrics.stacked import StackedModesSuite
from gan_cli.metrics.suite import evaluation_problems
from gan_cli.sampling.files import from_uint8
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import training_loop
from gan_cli.validation import check_train_config
from tests.disk_data import write_celeba, write_cifar10, write_idx_dataset
from tests.helpers import assert_user_error, compose_train, run_clis

# A few steps of narrow networks, whatever the preset's recipe.
SHORT = [
    "train.steps=2", "train.batch_size=2", "samples.every=2", "samples.n=4", "checkpoint.every=2",
    "log.every=1", "log.progress_bar=false",
]
NARROW_CONV = ["model.g_width=8", "model.d_width=8"]
NARROW_MLP = ["model.g_hidden=[16]", "model.d_hidden=[16]"]


def run_preset(run_dir, preset: str, overrides: list[str]):
    overrides = [f"experiment={preset}", *SHORT, *overrides]
    cfg = compose_train(overrides)
    check_train_config(cfg)
    training_loop(cfg, run_dir, {"overrides": overrides})
    return load_checkpoint(run_dir)


@pytest.mark.parametrize(
    "preset,write,overrides,shape",
    [
        ("dcgan_cifar10", lambda root: write_cifar10(root, per_batch=2), [], {"channels": 3, "image_size": 32, "num_classes": 10}),
        ("dcgan_celeba64", lambda root: write_celeba(root, n=9), ["dataset.workers=0"], {"channels": 3, "image_size": 64, "num_classes": 0}),
        ("dcgan_fashion_mnist", lambda root: write_idx_dataset(root, "FashionMNIST", n=8), [], {"channels": 1, "image_size": 28, "num_classes": 10}),
    ],
)
def test_image_presets_run_on_their_data(tmp_path, preset, write, overrides, shape):
    write(tmp_path / "data")
    checkpoint = run_preset(tmp_path / "run", preset, [f"dataset.root={tmp_path / 'data'}", *NARROW_CONV, *overrides])
    assert checkpoint["step"] == 2 and checkpoint["image_shape"] == shape
    assert (tmp_path / "run" / "samples" / "step_0000002.png").is_file()


@pytest.mark.parametrize("preset,dimensions", [("gan_gaussians_1d", 1), ("gan_ring_2d", 2), ("gan_grid_2d", 2)])
def test_toy_presets_run(tmp_path, preset, dimensions):
    # A batch of 4: the ring's and the grid's D judge packs of 4 and 2 points.
    checkpoint = run_preset(tmp_path, preset, NARROW_MLP + ["dataset.num_samples=64", "train.batch_size=4"])
    assert checkpoint["step"] == 2 and checkpoint["image_shape"] == {"sample_shape": [dimensions], "num_classes": 0}
    assert (tmp_path / "samples" / "step_0000002.png").is_file()


@pytest.fixture(scope="module")
def stacked_run(tmp_path_factory):
    """The Stacked MNIST preset on tiny IDX files, evaluated (stacked_modes) at steps 1 and 2."""
    root = tmp_path_factory.mktemp("stacked")
    write_idx_dataset(root / "data", "MNIST", n=40)
    overrides = [f"dataset.root={root / 'data'}", "dataset.num_samples=16", "eval.every=1", "eval.n=10", *NARROW_CONV]
    with pytest.MonkeyPatch.context() as patch:  # the tiny MNIST's reference must not land in the shared cache
        patch.setenv("GAN_CLI_CACHE", str(root / "cache"))
        run_preset(root / "run", "dcgan_stacked_mnist", overrides)
    return root


def test_stacked_mnist_preset_logs_its_modes(stacked_run):
    lines = [json.loads(line) for line in (stacked_run / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    for line in lines:
        assert 1 <= line["modes_captured"] <= 10 and 0 <= line["modes_kl_uniform"] <= math.log(1000) + 1e-9
    events = EventAccumulator(str(stacked_run / "run" / "tb"))
    events.Reload()
    assert {"eval/modes_captured", "eval/modes_kl_uniform"} <= set(events.Tags()["scalars"])
    assert (stacked_run / "run" / "checkpoints" / "best.pt").is_file()


def test_gan_eval_scores_a_stacked_checkpoint_and_refuses_mnist_metrics(stacked_run, tmp_path):
    common = [f"ckpt={stacked_run / 'run'}", "n=10", f"data_root={stacked_run / 'data'}", "device=cpu"]
    env = {"GAN_CLI_CACHE": str(stacked_run / "cache")}
    result, refused = run_clis(
        [
            ("gan-eval", *common, "metrics=[stacked_modes]", f"out={tmp_path / 'modes.json'}"),
            ("gan-eval", *common),  # the default metrics are MNIST's
        ],
        cwd=tmp_path,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    record = json.loads((tmp_path / "modes.json").read_text())
    assert set(record["metrics"]) == {"modes_captured", "modes_kl_uniform"}
    assert "real-data floor: 10 stacks of MNIST test digits" in result.stdout
    assert_user_error(refused, "has images of shape 3x28x28, but the shipped evaluator is an MNIST classifier")


def test_stacked_modes_of_real_digits_and_of_a_collapsed_generator(mnist_root):
    images, labels = load_mnist(str(mnist_root), "test", download=False)
    index = stack_indices(len(images), 500, seed=5)
    stacks, modes = from_uint8(images[index, 0]), triple_labels(labels[index])
    suite = StackedModesSuite(500, 0, str(mnist_root), torch.device("cpu"))
    real = suite.evaluate_images(stacks).values
    expected = len(torch.unique(modes))  # about 500 * (1 - e^-0.5) distinct triples
    assert abs(real["modes_captured"] - expected) <= 10  # the evaluator misreads about 1.5% of triples
    assert real["modes_kl_uniform"] == pytest.approx(suite.floor["modes_kl_uniform"], abs=0.1)
    collapsed = suite.evaluate_images(stacks[:1].expand(500, -1, -1, -1)).values
    assert collapsed == {"modes_captured": 1, "modes_kl_uniform": pytest.approx(math.log(1000))}


def test_stacked_modes_count_more_samples_than_the_test_split(mnist_root):
    """PacGAN counts the 1,000 modes in 26,000 samples: stacked_modes alone takes n beyond 10,000
    (its floor stacks the test digits into as many triples); the other metrics do not."""
    assert evaluation_problems(["stacked_modes"], 26000, "modes_kl_uniform") == []
    assert "must be 10 to 10000" in evaluation_problems(["fid"], 26000, "fid")[0]
    floor = StackedModesSuite(26000, 0, str(mnist_root), torch.device("cpu")).floor
    assert floor["modes_captured"] >= 995 and floor["modes_kl_uniform"] < 0.1  # 26 stacks per mode on average


@pytest.mark.slow
@pytest.mark.parametrize("preset, modes", [("gan_ring_2d", 8), ("gan_grid_2d", 25)])
def test_the_toy_presets_find_every_mode(tmp_path, preset, modes, one_thread):
    """The full preset (20,000 steps, a few minutes): every mode captured and >= 90% of the points
    within 3 standard deviations of one, at the end (PacGAN's packs and the decaying learning rates;
    without the pack the same runs found 7 of 8 and 12 of 25 modes, README "Mode-collapse remedies").
    One thread, as the README's runs: 96% and 93% high quality."""
    overrides = [f"experiment={preset}", "log.progress_bar=false"]
    training_loop(compose_train(overrides), tmp_path, {"overrides": overrides})
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    captured = [e.value for e in events.Scalars("modes/captured")]
    quality = [e.value for e in events.Scalars("modes/high_quality")]
    assert captured[0] < modes and quality[0] < 0.2  # it starts collapsed: the end is learned
    assert captured[-1] == modes and quality[-1] >= 0.9, (captured[-4:], quality[-4:])
