"""Toy vector data: the mixtures' statistics, the mode metrics on hand-placed points, the refusal of
convolutional models, and a real run that draws the game (PNG files, TensorBoard images, scalars)."""

import math

import numpy as np
import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.data.source import DataShape
from gan_cli.data.toy import toy_mixture
from gan_cli.errors import GanError
from gan_cli.metrics.modes import histogram_modes, mixture_modes, nearest_modes
from gan_cli.games import build_game
from gan_cli.sampling.files import write_points
from gan_cli.sampling.requests import write_requested_samples
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import training_loop
from gan_cli.training.pictures import build_pictures, kernel_density
from gan_cli.training.rng import seed_everything
from gan_cli.validation import check_train_config
from tests.helpers import compose_train, train_tiny

RING = ["dataset=ring_2d", "model=mlp"]


def mixture(name: str, overrides: list[str] = ()):
    return toy_mixture(compose_train([f"dataset={name}", "model=mlp", *overrides]).dataset)


def test_ring_and_grid_modes_sit_where_the_configs_say():
    ring = mixture("ring_2d")
    assert ring.centers.shape == (8, 2)
    assert torch.allclose(ring.centers.norm(dim=1), torch.full((8,), 0.8))
    assert torch.allclose(ring.centers[2], torch.tensor([0.0, 0.8]), atol=1e-6)  # a quarter turn
    grid = mixture("grid_2d")
    assert grid.centers.shape == (25, 2)
    assert sorted(set(grid.centers[:, 0].tolist())) == pytest.approx([-0.8, -0.4, 0.0, 0.4, 0.8])
    assert ring.reach() < 1 and grid.reach() < 1  # 3 std out, still inside tanh's range


@pytest.mark.parametrize("name", ["ring_2d", "grid_2d"])
def test_sampled_points_have_the_mixtures_means_and_spread(name):
    cfg = compose_train([f"dataset={name}", "model=mlp", "dataset.num_samples=20000"])
    points, modes = toy_mixture(cfg.dataset).sample(cfg.dataset.num_samples, cfg.dataset.seed)
    centers, std = toy_mixture(cfg.dataset).centers, cfg.dataset.std
    assert points.shape == (20000, 2) and points.dtype == torch.float32
    counts = torch.bincount(modes, minlength=len(centers))
    assert counts.min() > 0.7 * 20000 / len(centers)  # equal weights
    for k in range(len(centers)):
        mine = points[modes == k]
        assert torch.allclose(mine.mean(0), centers[k], atol=4 * std / math.sqrt(len(mine)) + 1e-6)
        assert mine.std(0) == pytest.approx([std, std], rel=0.1)
    distance, nearest = nearest_modes(points, centers)
    assert torch.equal(nearest, modes)  # the modes are far apart compared with their width
    assert (distance < 5 * std).all()


def test_gaussians_1d_mixture_statistics_and_density():
    one = mixture("gaussians_1d")
    points, _ = one.sample(50000, seed=1)
    assert points.shape == (50000, 1)
    assert points.mean().item() == pytest.approx(0.2, abs=0.003) and points.std().item() == pytest.approx(0.1, rel=0.02)
    two = mixture("gaussians_1d", ["dataset.means=[-0.5,0.5]", "dataset.stds=[0.1,0.05]"])
    x = torch.linspace(-1, 1, 2001)
    density = two.density(x)
    assert (density.sum() * (x[1] - x[0])).item() == pytest.approx(1.0, abs=1e-3)  # integrates to 1
    assert density[x.sub(0.5).abs().argmin()] == pytest.approx(0.5 / (0.05 * math.sqrt(2 * math.pi)), rel=1e-3)
    points, modes = two.sample(20000, seed=0)
    assert points[modes == 0].mean().item() == pytest.approx(-0.5, abs=0.01)
    assert points[modes == 1].std().item() == pytest.approx(0.05, rel=0.05)
    estimate = kernel_density(points[:4000, 0], x)  # the generator's curve, here of real points
    assert (estimate - density).abs().max() < 0.15 * density.max()


# --- the mode metrics on hand-placed points ---------------------------------------------------------


CENTERS = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
STDS = torch.full((4,), 0.01)


def test_all_modes_captured():
    points = CENTERS.repeat(25, 1) + 0.02  # 2 std off each centre: within 3 std
    assert mixture_modes(points, CENTERS, STDS) == {"captured": 4, "high_quality": 1.0}


def test_one_mode_captured():
    points = CENTERS[2].repeat(100, 1)
    assert mixture_modes(points, CENTERS, STDS) == {"captured": 1, "high_quality": 1.0}


def test_no_mode_captured():
    points = torch.full((100, 2), 0.5)  # between all four modes
    assert mixture_modes(points, CENTERS, STDS) == {"captured": 0, "high_quality": 0.0}


def test_stray_points_do_not_capture_a_mode():
    # 96 points on mode 0, 4 on mode 1: a fifth of the fair share (0.2 * 100 / 4 = 5) is not reached
    points = torch.cat([CENTERS[0].repeat(96, 1), CENTERS[1].repeat(4, 1)])
    assert mixture_modes(points, CENTERS, STDS)["captured"] == 1
    points = torch.cat([CENTERS[0].repeat(50, 1), torch.full((50, 2), 0.04)])  # 4 std off mode 0
    assert mixture_modes(points, CENTERS, STDS) == {"captured": 1, "high_quality": 0.5}


def test_histogram_modes_uniform_collapsed_and_partial():
    uniform = histogram_modes(torch.arange(1000).repeat(3), 1000)
    assert uniform["captured"] == 1000 and uniform["kl_uniform"] == pytest.approx(0.0, abs=1e-9)
    collapsed = histogram_modes(torch.full((500,), 7), 1000)
    assert collapsed["captured"] == 1 and collapsed["kl_uniform"] == pytest.approx(math.log(1000))
    half = histogram_modes(torch.arange(500), 1000)
    assert half["captured"] == 500 and half["kl_uniform"] == pytest.approx(math.log(2))


# --- configs -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "overrides,message",
    [
        (["dataset=ring_2d"], "dataset=ring_2d holds points, not images, and model.arch=dcgan is convolutional: use model=mlp"),
        (["dataset=grid_2d", "model=infogan"], "dataset=grid_2d holds points, not images"),
        (RING[:1] + ["model=mlp", "dataset.radius=0.99"], "dataset=ring_2d: its modes reach 1.01"),
        (["dataset=gaussians_1d", "model=mlp", "dataset.stds=[0.1,0.1]"], "dataset.means (1 values) and dataset.stds (2)"),
        (["dataset=gaussians_1d", "model=mlp", "dataset.stds=[-0.1]"], "dataset.stds=[-0.1] must all be positive"),
        (["dataset=grid_2d", "model=mlp", "dataset.std=0"], "dataset.std=0.0 must be positive"),
    ],
)
def test_toy_configs_that_cannot_work_are_refused(overrides, message):
    with pytest.raises(GanError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        check_train_config(compose_train(overrides))


# --- a real run draws the game -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ring_run")
    train_tiny(run_dir, [*RING, "model.input_dropout=0", "train.steps=6", "samples.every=3"], model="mlp")
    return run_dir


def logged_modes(run_dir) -> dict[str, list[tuple[int, float]]]:
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    return {name: [(e.step, e.value) for e in events.Scalars(f"modes/{name}")] for name in ("captured", "high_quality")}


def modes_of(generator, inputs: dict[str, torch.Tensor], dataset: list[str]) -> dict[str, float]:
    """The mode metrics of `generator`'s points for `inputs` on the mixture `dataset` selects, computed here."""
    with torch.no_grad():
        points = generator.eval()(**inputs)
    mixture = toy_mixture(compose_train([*dataset, "model=mlp"]).dataset)
    return mixture_modes(points, mixture.centers, mixture.stds)


def modes_of_the_last_picture(run_dir, dataset: list[str]) -> dict[str, float]:
    """The mode metrics of the checkpoint's raw generator on the picture's fixed inputs."""
    checkpoint = load_checkpoint(run_dir)
    return modes_of(sampler_from_checkpoint(checkpoint, use_ema=False), checkpoint["fixed_inputs"], dataset)


def test_a_2d_run_draws_points_over_d_and_logs_the_modes(ring_run):
    pictures = sorted(p.name for p in (ring_run / "samples").glob("*.png"))
    assert pictures == ["step_0000003.png", "step_0000006.png"]
    picture = np.asarray(Image.open(ring_run / "samples" / "step_0000006.png"))
    assert picture.shape[0] > 400 and picture.shape[1] > 500 and picture.std() > 20  # a drawn figure, not a blank
    events = EventAccumulator(str(ring_run / "tb"))
    events.Reload()
    assert [e.step for e in events.Images("game")] == [3, 6]
    assert "samples" not in events.Tags()["images"]
    logged = logged_modes(ring_run)
    assert [step for step, _ in logged["captured"]] == [step for step, _ in logged["high_quality"]] == [3, 6]
    expected = modes_of_the_last_picture(ring_run, RING[:1])  # the values of step 6, computed from its checkpoint
    assert logged["captured"][-1][1] == expected["captured"]
    assert logged["high_quality"][-1][1] == pytest.approx(expected["high_quality"], abs=1e-6)
    checkpoint = load_checkpoint(ring_run)
    assert checkpoint["image_shape"] == {"sample_shape": [2], "num_classes": 0}
    assert checkpoint["fixed_inputs"]["z"].shape == (2500, 100)  # the picture's 2,500 generated points


def test_a_1d_run_draws_the_papers_picture(tmp_path):
    overrides = ["dataset=gaussians_1d", "model=mlp", "model.latent_dim=1", "model.input_dropout=0", "train.steps=3"]
    train_tiny(tmp_path, overrides, model="mlp")
    picture = np.asarray(Image.open(tmp_path / "samples" / "step_0000003.png"))
    assert picture.shape[0] > 600  # three panels: densities, D and D*, the map z -> x
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [e.step for e in events.Images("game")] == [3]
    # Step 3's mode metrics, as logged, are those of the checkpoint's generator on the picture's inputs.
    expected = modes_of_the_last_picture(tmp_path, ["dataset=gaussians_1d"])
    logged = logged_modes(tmp_path)
    assert logged["captured"] == [(3, expected["captured"])]
    assert logged["high_quality"] == [(3, pytest.approx(expected["high_quality"], abs=1e-6))]


def test_the_1d_preset_moves_g_onto_the_data_within_100_steps(tmp_path, one_thread):
    """A narrow mode at 0.6, far from where the untrained G puts its points (around 0): the first
    picture, drawn from the untrained G, has almost no point within 3 standard deviations of it; the
    picture at step 100 has almost all of them there."""
    mode = ["dataset=gaussians_1d", "dataset.means=[0.6]", "dataset.stds=[0.05]"]
    overrides = ["experiment=gan_gaussians_1d", *mode, "train.steps=100", "log.progress_bar=false", "checkpoint.every=100"]
    cfg = compose_train(overrides)
    seed_everything(cfg.seed)  # the run's initial weights, and its fixed inputs
    game = build_game(cfg, DataShape((1,), 0))
    untrained = game.networks[game.sampler]
    start = modes_of(untrained, build_pictures(cfg, DataShape((1,), 0), game, game.networks).inputs, mode)
    training_loop(cfg, tmp_path, {"overrides": overrides})
    (step, captured), (_, quality) = logged_modes(tmp_path)["captured"][-1], logged_modes(tmp_path)["high_quality"][-1]
    assert start["captured"] == 0 and start["high_quality"] < 0.05, start
    assert (step, captured) == (100, 1) and quality > 0.9


def test_sampling_a_toy_checkpoint_writes_points_or_a_picture(ring_run, tmp_path):
    generator = sampler_from_checkpoint(load_checkpoint(ring_run))
    points = generator(torch.randn(50, 100)).detach()
    assert points.shape == (50, 2) and points.abs().max() < 1
    assert write_points(points, tmp_path / "points.npz") == "npz"
    assert np.load(tmp_path / "points.npz")["points"].shape == (50, 2)
    assert write_points(points, tmp_path / "points.png") == "picture"
    assert Image.open(tmp_path / "points.png").size[0] > 400
    with pytest.raises(GanError, match="makes 2-D points, not images: write them with out=<name>.npz"):
        write_points(points, tmp_path / "folder")


def test_gan_sample_on_a_toy_checkpoint(ring_run, tmp_path):
    def sample(*overrides):
        cfg = compose_train([f"ckpt={ring_run}", *overrides], config_name="sample")
        return write_requested_samples(sampler_from_checkpoint(load_checkpoint(ring_run)), cfg)

    assert sample("n=30", f"out={tmp_path / 'p.npz'}") == f"30 points (npz) to {tmp_path / 'p.npz'}"
    assert np.load(tmp_path / "p.npz")["points"].shape == (30, 2)
    with pytest.raises(GanError, match="mode=interpolate draws images, and this checkpoint's generator makes points"):
        sample("mode=interpolate", f"out={tmp_path / 'walk.png'}")


def test_data_shape_records_load_old_image_checkpoints_and_vectors():
    assert DataShape.from_record({"channels": 1, "image_size": 28, "num_classes": 10}) == DataShape((1, 28, 28), 10)
    for shape in (DataShape((3, 64, 64), 0), DataShape((2,), 0), DataShape((1,), 3)):
        assert DataShape.from_record(shape.record()) == shape
    assert DataShape((2,)).describe() == "2-D points" and not DataShape((2,)).is_image
    with pytest.raises(GanError, match="the data are 2-D points, not images"):
        DataShape((2,)).image_size
