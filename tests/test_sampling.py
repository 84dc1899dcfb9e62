"""gan-sample's modes: class-conditional samples, interpolations (grid or GIF), InfoGAN traversals."""

import re

import numpy as np
import pytest
import torch
from PIL import Image

from gan_cli.errors import GanError
from gan_cli.metrics.image_files import read_images
from gan_cli.sampling.files import to_uint8
from gan_cli.sampling.inputs import class_grid_inputs, generate, seeded_inputs
from gan_cli.sampling.requests import check_sample_config, write_requested_samples
from gan_cli.sampling.walks import interpolation_inputs, lerp, slerp, traversal_inputs
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.training.checkpoint import load_checkpoint
from tests.helpers import compose_train, run_cli, run_clis, train_tiny


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
    cfg.out = f"{tmp_path}/{cfg.out}"  # not tmp_path / out: a Path drops the trailing / that names a folder
    return write_requested_samples(sampler_from_checkpoint(load_checkpoint(run_dir)), cfg)


def test_one_class(cgan_run, tmp_path):
    summary = sample(cgan_run, tmp_path, "label=3", "n=7", "out=three.npz")
    assert summary.startswith("7 images (npz)")
    arrays = np.load(tmp_path / "three.npz")
    assert arrays["images"].shape == (7, 28, 28, 1) and sorted(arrays.files) == ["images", "labels"]
    assert arrays["labels"].dtype == np.int64 and arrays["labels"].tolist() == [3] * 7


def test_npz_of_a_conditional_model_holds_the_label_of_each_image(cgan_run, tmp_path):
    sample(cgan_run, tmp_path, "n=12", "seed=4", "out=drawn.npz")
    arrays = np.load(tmp_path / "drawn.npz")
    generator = sampler_from_checkpoint(load_checkpoint(cgan_run))
    inputs = seeded_inputs(generator, 12, seed=4)  # the labels gan-sample drew, at random
    assert arrays["labels"].dtype == np.int64 and arrays["labels"].shape == (12,)
    assert arrays["labels"].tolist() == inputs["y"].tolist() and len(set(arrays["labels"].tolist())) > 1
    assert np.array_equal(arrays["images"], to_uint8(generate(generator, inputs)).permute(0, 2, 3, 1).numpy())
    assert read_images(tmp_path / "drawn.npz").shape == (12, 1, 28, 28)  # gan-eval still reads it
    sample(cgan_run, tmp_path, "labels=all", "n=20", "out=classes.npz")
    assert np.load(tmp_path / "classes.npz")["labels"].tolist() == [k for k in range(10) for _ in range(2)]


def test_npz_of_an_infogan_model_holds_its_first_categorical_code(infogan_run, tmp_path):
    sample(infogan_run, tmp_path, "n=20", "out=codes.npz")
    arrays = np.load(tmp_path / "codes.npz")
    assert sorted(arrays.files) == ["codes", "images"]  # no labels: InfoGAN is not conditional
    inputs = seeded_inputs(sampler_from_checkpoint(load_checkpoint(infogan_run)), 20, seed=0)
    assert arrays["codes"].dtype == np.int64 and arrays["codes"].shape == (20,)
    assert arrays["codes"].tolist() == inputs["c"][:, :10].argmax(dim=1).tolist()
    assert len(set(arrays["codes"].tolist())) > 1


def test_a_folder_of_pngs_is_named_without_a_suffix_or_with_a_trailing_slash(cgan_run, tmp_path):
    assert sample(cgan_run, tmp_path, "n=3", "out=shots.v1/").startswith("3 images (images)")
    assert sorted(p.name for p in (tmp_path / "shots.v1").iterdir()) == ["000000.png", "000001.png", "000002.png"]
    sample(cgan_run, tmp_path, "n=2", "format=images", "out=more")
    assert len(list((tmp_path / "more").glob("*.png"))) == 2


REFUSED = [
    (["mode=interpolate", "out=w.npz"],
     "out=w.npz: mode=interpolate writes a grid with a row per walk (out=<name>.png) or an animation whose "
     "frames are the steps (out=<name>.gif)"),
    (["mode=traverse", "out=codes.gif"], "out=codes.gif: mode=traverse writes one grid per code as <name>_<code>.png (out=<name>.png)"),
    (["out=x.jpg"], "out=x.jpg: mode=sample writes a grid (out=<name>.png), arrays (out=<name>.npz) or one PNG per image (out=<folder>/)"),
    (["mode=interpolate", "out=frames/"], "out=frames/: mode=interpolate writes"),
    (["mode=traverse", "out=codes"], "out=codes: mode=traverse writes"),
    (["out=''"], "out= is empty"),
    (["format=npz", "out=x.png"], "format=npz writes out=<name>.npz, and out=x.png names a grid: rename out, or leave format=auto"),
    (["format=images", "out=x.npz"], "format=images writes out=<folder>/, and out=x.npz names arrays"),
    (["format=grid", "mode=interpolate", "out=w.png"], "format=grid is for mode=sample; mode=interpolate writes what out's suffix names"),
    (["format=jpeg"], "format='jpeg' is not an output format; use one of auto, grid, images, npz"),
    (["label=7", "labels=all"], "label=7 and labels=all contradict each other: give label=<k> for one class, or labels=all"),
    (["labels=some"], "labels='some': the only value is `all`"),
    (["mode=interpolate", "labels=all"], "labels=all (a row per class) is for mode=sample; mode=interpolate takes label=<k>"),
    (["mode=traverse", "label=3"], "mode=traverse sweeps InfoGAN codes and takes no label= or labels="),
    (["mode=interpolate", "steps=1"], "steps=1 must be at least 2: a walk or a sweep needs both its ends"),
    (["mode=traverse", "steps=0"], "steps=0 must be at least 2"),
    (["n=0"], "n=0 must be positive"),
    (["nrow=-1"], "nrow=-1 must be positive"),
    (["batch_size=0"], "batch_size=0 must be positive"),
    (["mode=sideways"], "mode='sideways' is not a gan-sample mode; use one of sample, interpolate, traverse"),
]


@pytest.mark.parametrize("overrides,message", REFUSED, ids=[" ".join(case[0]) for case in REFUSED])
def test_contradictory_or_meaningless_requests_are_refused_before_anything_is_written(
    cgan_run, tmp_path, monkeypatch, overrides, message
):
    cfg = compose_train(overrides, config_name="sample")
    with pytest.raises(GanError) as refused:
        check_sample_config(cfg)
    assert message in str(refused.value) and "\n" not in str(refused.value)
    monkeypatch.chdir(tmp_path)  # `out` as the user gave it, relative to here
    with pytest.raises(GanError, match=re.escape(message)):
        write_requested_samples(sampler_from_checkpoint(load_checkpoint(cgan_run)), cfg)
    assert list(tmp_path.iterdir()) == []


def test_every_problem_is_named_in_one_line():
    with pytest.raises(GanError) as refused:
        check_sample_config(compose_train(["n=0", "mode=interpolate", "out=w.npz"], config_name="sample"))
    assert str(refused.value).startswith("n=0 must be positive; out=w.npz: mode=interpolate writes")


def test_gan_sample_command_refuses_before_reading_the_checkpoint(cgan_run, tmp_path):
    commands = [("gan-sample", f"ckpt={ckpt}", *overrides) for ckpt, overrides in (
        (cgan_run, ["mode=interpolate", "out=w.npz"]),
        (cgan_run, ["label=7", "labels=all", "out=sevens.png"]),
        (tmp_path / "no-such-run", ["mode=interpolate", "steps=1"]),  # refused before the path is even looked at
    )]
    results = run_clis(commands, cwd=tmp_path)
    messages = ["out=w.npz: mode=interpolate writes", "label=7 and labels=all contradict each other", "steps=1 must be at least 2"]
    for result, message in zip(results, messages):
        assert result.returncode == 1 and result.stderr.startswith("gan-sample: error: ")
        assert message in result.stderr and result.stderr.count("\n") == 1  # one line, no traceback
    assert list(tmp_path.iterdir()) == []


def test_labels_all_is_a_row_per_class(cgan_run, tmp_path):
    sample(cgan_run, tmp_path, "labels=all", "n=50", "out=classes.png")
    assert Image.open(tmp_path / "classes.png").size == (2 + 5 * 30, 2 + 10 * 30)  # 5 columns, 10 rows
    inputs = class_grid_inputs(sampler_from_checkpoint(load_checkpoint(cgan_run)), 5, seed=0)
    assert inputs["y"].view(10, 5).T.tolist() == [list(range(10))] * 5


def test_labels_all_makes_n_images_in_all_and_refuses_an_n_the_classes_cannot_share(cgan_run, tmp_path):
    summary = sample(cgan_run, tmp_path, "labels=all", "n=20", "out=x.npz")
    arrays = np.load(tmp_path / "x.npz")
    assert summary.startswith("20 images (npz)") and arrays["images"].shape == (20, 28, 28, 1)
    assert np.bincount(arrays["labels"]).tolist() == [2] * 10
    with pytest.raises(GanError, match=r"n=15 with labels=all: this model has 10 classes, .* use for example n=10 or n=20"):
        sample(cgan_run, tmp_path, "labels=all", "n=15", "out=y.npz")
    assert not (tmp_path / "y.npz").exists()


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
    generator = sampler_from_checkpoint(load_checkpoint(cgan_run))
    walk = interpolation_inputs(generator, rows=3, steps=4, seed=0, method="slerp")
    assert walk["z"].shape == (12, 100) and walk["y"].view(3, 4).unique(dim=1).shape == (3, 1)


def test_infogan_traversals_sweep_one_code_at_a_time(infogan_run, tmp_path):
    summary = sample(infogan_run, tmp_path, "mode=traverse", "n=4", "steps=7", "out=codes.png")
    sizes = {name: Image.open(tmp_path / f"codes_{name}.png").size for name in ("categorical0", "continuous0", "continuous1")}
    assert sizes == {"categorical0": (2 + 10 * 30, 2 + 4 * 30), "continuous0": (2 + 7 * 30, 2 + 4 * 30),
                     "continuous1": (2 + 7 * 30, 2 + 4 * 30)}
    assert "codes_categorical0.png" in summary


def test_traversal_inputs_change_only_the_swept_code(infogan_run):
    generator = sampler_from_checkpoint(load_checkpoint(infogan_run))
    sweeps = traversal_inputs(generator, rows=2, steps=5, seed=0)
    continuous = sweeps["continuous1"]["c"].view(2, 5, 12)
    assert torch.equal(continuous[:, :, 11], torch.linspace(-2, 2, 5).expand(2, 5))
    assert (continuous[:, :, :11] == continuous[:, :1, :11]).all()  # everything else fixed along a row
    categorical = sweeps["categorical0"]["c"].view(2, 10, 12)
    assert torch.equal(categorical[0, :, :10], torch.eye(10))


def test_gan_sample_command_for_a_conditional_model(cgan_run, tmp_path):
    result = run_cli("gan-sample", f"ckpt={cgan_run}", "labels=all", "n=30", "out=grid.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "grid.png").size == (2 + 3 * 30, 2 + 10 * 30)
    result = run_cli("gan-sample", f"ckpt={cgan_run}", "label=12", cwd=tmp_path)
    assert result.returncode == 1 and "label=12 is not a class of this model" in result.stderr
    result = run_cli("gan-sample", f"ckpt={cgan_run}", "labels=all", "n=15", "out=x.npz", cwd=tmp_path)
    assert result.returncode == 1 and "n=15 with labels=all: this model has 10 classes" in result.stderr
    assert result.stderr.count("\n") == 1 and not (tmp_path / "x.npz").exists()
