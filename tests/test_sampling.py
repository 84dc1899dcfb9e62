"""gan-sample's modes: class-conditional samples, interpolations (grid or GIF), InfoGAN traversals."""

import numpy as np
import pytest
import torch
from PIL import Image

from gan_cli.errors import GanError
from gan_cli.sampling import (
    class_grid_inputs,
    interpolation_inputs,
    lerp,
    slerp,
    traversal_inputs,
    write_requested_samples,
)
from gan_cli.training.checkpoint import generator_from_checkpoint, load_checkpoint
from tests.helpers import compose_train, run_cli, train_tiny


@pytest.fixture(scope="module")
def cgan_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("cgan")
    train_tiny(run_dir, ["train.steps=2"], model="cgan")
    return run_dir


@pytest.fixture(scope="module")
def infogan_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("infogan")
    train_tiny(run_dir, ["train.steps=2"], model="infogan")
    return run_dir


def sample(run_dir, tmp_path, *overrides: str) -> str:
    """Run gan-sample's logic in-process on run_dir's generator, writing into tmp_path."""
    cfg = compose_train([f"ckpt={run_dir}", *overrides], config_name="sample")
    cfg.out = str(tmp_path / cfg.out)
    return write_requested_samples(generator_from_checkpoint(load_checkpoint(run_dir)), cfg)


def test_one_class(cgan_run, tmp_path):
    summary = sample(cgan_run, tmp_path, "label=3", "n=7", "out=three.npz")
    assert summary.startswith("7 images (npz)")
    assert np.load(tmp_path / "three.npz")["images"].shape == (7, 28, 28, 1)


def test_labels_all_is_a_row_per_class(cgan_run, tmp_path):
    sample(cgan_run, tmp_path, "labels=all", "nrow=5", "out=classes.png")
    assert Image.open(tmp_path / "classes.png").size == (2 + 5 * 30, 2 + 10 * 30)  # 5 columns, 10 rows
    inputs = class_grid_inputs(generator_from_checkpoint(load_checkpoint(cgan_run)), 5, seed=0)
    assert inputs["y"].view(10, 5).T.tolist() == [list(range(10))] * 5


def test_label_requests_are_checked(cgan_run, infogan_run, tmp_path):
    with pytest.raises(GanError, match="label=10 is not a class of this model: use 0 to 9"):
        sample(cgan_run, tmp_path, "label=10")
    with pytest.raises(GanError, match="needs a conditional model"):
        sample(infogan_run, tmp_path, "labels=all")
    with pytest.raises(GanError, match="mode=traverse needs an InfoGAN checkpoint"):
        sample(cgan_run, tmp_path, "mode=traverse")


def test_interpolation_grid_and_gif(cgan_run, tmp_path):
    sample(cgan_run, tmp_path, "mode=interpolate", "n=3", "steps=6", "label=2", "out=walk.png")
    assert Image.open(tmp_path / "walk.png").size == (2 + 6 * 30, 2 + 3 * 30)
    sample(cgan_run, tmp_path, "mode=interpolate", "n=4", "steps=5", "nrow=2", "interpolation=lerp", "out=walk.gif")
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 5 and gif.size == (2 + 2 * 30, 2 + 2 * 30)


def test_interpolations_start_and_end_at_the_endpoints():
    a, b = torch.randn(3, 8), torch.randn(3, 8)
    t = torch.linspace(0, 1, 5)
    for walk in (slerp(a, b, t), lerp(a, b, t)):
        assert walk.shape == (3, 5, 8)
        assert torch.allclose(walk[:, 0], a, atol=1e-5) and torch.allclose(walk[:, -1], b, atol=1e-5)
    # slerp keeps the norm between the endpoints' norms; lerp cuts through the inside
    mid_slerp, mid_lerp = slerp(a, b, t)[:, 2].norm(dim=1), lerp(a, b, t)[:, 2].norm(dim=1)
    assert (mid_slerp > mid_lerp).all()


def test_interpolation_keeps_each_rows_label(cgan_run):
    generator = generator_from_checkpoint(load_checkpoint(cgan_run))
    walk = interpolation_inputs(generator, rows=3, steps=4, seed=0, method="slerp")
    assert walk["z"].shape == (12, 100) and walk["y"].view(3, 4).unique(dim=1).shape == (3, 1)


def test_infogan_traversals_sweep_one_code_at_a_time(infogan_run, tmp_path):
    summary = sample(infogan_run, tmp_path, "mode=traverse", "n=4", "steps=7", "out=codes.png")
    sizes = {name: Image.open(tmp_path / f"codes_{name}.png").size for name in ("categorical0", "continuous0", "continuous1")}
    assert sizes == {"categorical0": (2 + 10 * 30, 2 + 4 * 30), "continuous0": (2 + 7 * 30, 2 + 4 * 30),
                     "continuous1": (2 + 7 * 30, 2 + 4 * 30)}
    assert "codes_categorical0.png" in summary


def test_traversal_inputs_change_only_the_swept_code(infogan_run):
    generator = generator_from_checkpoint(load_checkpoint(infogan_run))
    sweeps = traversal_inputs(generator, rows=2, steps=5, seed=0)
    continuous = sweeps["continuous1"]["c"].view(2, 5, 12)
    assert torch.equal(continuous[:, :, 11], torch.linspace(-2, 2, 5).expand(2, 5))
    assert (continuous[:, :, :11] == continuous[:, :1, :11]).all()  # everything else fixed along a row
    categorical = sweeps["categorical0"]["c"].view(2, 10, 12)
    assert torch.equal(categorical[0, :, :10], torch.eye(10))


def test_gan_sample_command_for_a_conditional_model(cgan_run, tmp_path):
    result = run_cli("gan-sample", f"ckpt={cgan_run}", "labels=all", "nrow=3", "out=grid.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "grid.png").size == (2 + 3 * 30, 2 + 10 * 30)
    result = run_cli("gan-sample", f"ckpt={cgan_run}", "label=12", cwd=tmp_path)
    assert result.returncode == 1 and "label=12 is not a class of this model" in result.stderr
