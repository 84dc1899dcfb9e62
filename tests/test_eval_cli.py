"""gan-eval as a user runs it: on a checkpoint, on an .npz, on a folder of PNGs; bad input."""

import json

import numpy as np
import pytest

from gan_cli.cli import evaluate
from gan_cli.data.mnist import load_mnist
from gan_cli.errors import GanError
from tests.helpers import assert_user_error, compose_train, run_cli, run_clis, train_tiny

QUICK = ["n=200", "metrics=[fid,kid,coverage]"]


def test_eval_a_checkpoint_prints_a_table_and_writes_metrics_json(tiny_run, mnist_root, tmp_path):
    result = run_cli("gan-eval", f"ckpt={tiny_run}", *QUICK, f"data_root={mnist_root}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("metric"))
    assert header.split() == ["metric", "value", "real-data", "floor", "n", "reference"]
    fid_row = next(line for line in lines if line.startswith("fid ")).split()
    assert fid_row[0] == "fid" and fid_row[3:] == ["200", "mnist/train"]
    assert "real-data floor: 200 mnist/test images against the same 200 mnist/train images" in result.stdout

    record = json.loads((tiny_run / "checkpoints" / "last.metrics.json").read_text())
    assert record["step"] == 6 and record["generator"] == "EMA" and record["n"] == 200
    assert set(record["metrics"]) == {"fid", "kid", "kid_std", "classes_covered", "class_entropy", "class_kl_uniform"}
    fid = record["metrics"]["fid"]
    assert fid["value"] == pytest.approx(float(fid_row[1]), rel=1e-3)
    assert fid["value"] > 10 * fid["floor"]  # 6 steps of training are far from real digits
    assert list(tmp_path.iterdir()) == []  # nothing written to the working directory


def test_eval_an_npz_of_real_digits_scores_near_the_floor(mnist_root, tmp_path):
    images, _ = load_mnist(str(mnist_root), "test", download=False)
    np.savez(tmp_path / "digits.npz", images=images[-500:].permute(0, 2, 3, 1).numpy())  # (N, H, W, C) uint8
    result = run_cli(
        "gan-eval", "images=digits.npz", "n=300", "metrics=[fid,coverage]", f"data_root={mnist_root}", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert "Scoring the first 300 of the 500 images in digits.npz" in result.stdout
    metrics = json.loads((tmp_path / "metrics.json").read_text())["metrics"]
    assert metrics["classes_covered"]["value"] == 10
    assert metrics["fid"]["value"] < 3 * metrics["fid"]["floor"] + 0.5  # real digits: about the floor


@pytest.mark.slow
def test_png_folder_and_npz_of_the_same_samples_score_alike(tiny_run, mnist_root, tmp_path):
    # gan-sample's PNGs are RGB (three equal channels) and rounded by torchvision, its .npz by
    # gan_cli: a pixel may differ by one level, so the values agree closely rather than exactly.
    for out in ("samples.npz", "pngs"):
        assert run_cli("gan-sample", f"ckpt={tiny_run}", "n=50", f"out={out}", cwd=tmp_path).returncode == 0
    values = []
    for images in ("samples.npz", "pngs"):
        result = run_cli(
            "gan-eval", f"images={images}", *QUICK, f"data_root={mnist_root}", f"out={images}.json", cwd=tmp_path
        )
        assert result.returncode == 0, result.stderr
        assert "holds 50 images, fewer than n=200: scoring all of them" in result.stdout
        metrics = json.loads((tmp_path / f"{images}.json").read_text())["metrics"]
        values.append({name: metrics[name]["value"] for name in ("fid", "kid", "classes_covered")})
    assert values[0] == pytest.approx(values[1], rel=1e-4)


@pytest.mark.parametrize(
    "args,message",
    [
        ([], "give exactly one of ckpt= (a checkpoint or run directory) and images="),
        (["images=x.npz", "ckpt=y"], "give exactly one of ckpt="),
        (["images=missing.npz"], "images=missing.npz does not exist"),
        (["images=x.npz", "metrics=[fid,lpips]"], "metrics: 'lpips' is not a metric; use any of fid, kid, is"),
        (["images=x.npz", "n=abc"], "n=abc"),
        (["images=x.npz", "n=20000"], "n=20000 must be 10 to 10000"),
        (["ckpt=nowhere.pt"], "checkpoint not found: nowhere.pt does not exist"),
        (
            ["images=x.npz", "features=inception"],
            "features=inception needs inception_weights=<a torchvision inception_v3 state_dict (.pth) on this machine>; "
            "nothing is downloaded; features=inception with images= needs ref_images=<a folder of PNGs or an .npz",
        ),
    ],
)
def test_bad_input_gives_one_message(tmp_path, args, message):
    assert_user_error(run_cli("gan-eval", *args, cwd=tmp_path), message)


def test_images_the_evaluator_cannot_score_are_refused(tmp_path):
    np.savez(tmp_path / "colour.npz", images=np.zeros((20, 32, 32, 3), np.uint8) + np.arange(3, dtype=np.uint8))
    np.savez(tmp_path / "floats.npz", images=np.zeros((20, 28, 28, 1), np.float32))
    train_tiny(tmp_path / "run", ["dataset.channels=3", "dataset.image_size=32", "train.steps=1"])
    for args, message in [
        (["images=colour.npz"], "images=colour.npz has images of shape 3x32x32, but the shipped evaluator"),
        (["images=floats.npz"], "`images` must be uint8 of shape (N, H, W, C), as gan-sample writes; it is float32"),
        ([f"ckpt={tmp_path / 'run'}"], "has images of shape 3x32x32, but the shipped evaluator is an MNIST classifier"),
    ]:
        assert_user_error(run_cli("gan-eval", *args, cwd=tmp_path), message)


@pytest.mark.parametrize("model,value", [("cgan", "label_accuracy"), ("infogan", "code_accuracy")])
def test_eval_scores_conditional_and_infogan_checkpoints(model, value, mnist_root, tmp_path):
    train_tiny(tmp_path / "run", ["train.steps=2"], model=model)
    out = tmp_path / "scores.json"
    result = run_cli(
        "gan-eval", f"ckpt={tmp_path / 'run'}", "metrics=[coverage]", "n=200", f"data_root={mnist_root}", f"out={out}",
        cwd=tmp_path, env={"GAN_CLI_CACHE": str(tmp_path / "cache")},
    )
    assert result.returncode == 0, result.stderr
    scores = json.loads(out.read_text())["metrics"][value]
    assert 0 <= scores["value"] <= 1 and scores["floor"] > 0.95
    assert value in result.stdout


def test_feature_options_are_checked_before_anything_runs():
    def check(*overrides):
        return evaluate._check(compose_train(list(overrides), config_name="eval"))

    assert check("ckpt=y") == ["fid", "kid", "is", "precision_recall", "coverage"]  # metrics=null: all of the evaluator's
    assert check("ckpt=y", "features=inception", "inception_weights=w.pth") == ["fid", "kid", "precision_recall"]
    for overrides, message in [
        (["ckpt=y", "features=incept"], "features='incept': use evaluator (the shipped MNIST classifier) or inception"),
        (
            ["ckpt=y", "features=inception", "inception_weights=w.pth", "metrics=[fid,is]"],
            "metrics: is needs class posteriors, which only the shipped MNIST evaluator gives (features=evaluator); "
            "with features=inception use fid, kid, precision_recall",
        ),
        (["ckpt=y", "inception_weights=w.pth", "ref_images=r"], "inception_weights= goes with features=inception; ref_images= goes"),
        (["ckpt=y", "features=inception", "inception_weights=w.pth", "n=5"], "n=5 must be at least 10"),
    ]:
        with pytest.raises(GanError) as error:
            check(*overrides)
        assert message in str(error.value), str(error.value)


def colour_npz(path, n: int, seed: int):
    """n random colour images (n, 24, 20, 3) as an .npz, the way gan-sample writes them."""
    images = np.random.default_rng(seed).integers(0, 256, (n, 24, 20, 3), dtype=np.uint8)
    np.savez(path, images=images)


def test_inception_weights_that_cannot_be_used_are_one_message(inception_weights, tmp_path):
    colour_npz(tmp_path / "fake.npz", 20, 0)
    (tmp_path / "garbage.pth").write_bytes(b"not a state dict")
    common = ["images=fake.npz", "ref_images=fake.npz", "features=inception", "n=10"]
    missing, garbage, small_ref = run_clis(
        [
            ("gan-eval", *common, "inception_weights=missing.pth"),
            ("gan-eval", *common, "inception_weights=garbage.pth"),
            ("gan-eval", "images=fake.npz", "ref_images=fake.npz", "features=inception", f"inception_weights={inception_weights}"),
        ],
        cwd=tmp_path,
    )
    assert_user_error(missing, "inception_weights=missing.pth does not exist; give a torchvision inception_v3 state_dict")
    assert_user_error(garbage, "inception_weights=garbage.pth is not a PyTorch state_dict that loads without running code")
    # all 20 images are scored, and the 20 real ones cannot give 20 for the reference and 20 for the floor
    assert_user_error(small_ref, "ref_images=fake.npz holds 20 images, and n=20 needs 40: n for the reference and n more")


@pytest.mark.slow
def test_eval_with_inception_features_on_a_colour_checkpoint(inception_weights, tmp_path):
    train_tiny(tmp_path / "run", ["dataset.channels=3", "dataset.image_size=32", "train.steps=1"])
    cache = tmp_path / "cache"
    result = run_cli(
        "gan-eval", f"ckpt={tmp_path / 'run'}", "features=inception", f"inception_weights={inception_weights}", "n=10",
        "out=scores.json", cwd=tmp_path, env={"GAN_CLI_CACHE": str(cache)},
    )
    assert result.returncode == 0, result.stderr
    assert "real-data floor: 10 other fake/all images against the same 10 fake/all images" in result.stdout
    record = json.loads((tmp_path / "scores.json").read_text())
    assert record["features"] == "inception" and len(record["inception_sha256"]) == 64
    assert record["reference"] == "fake/all" and record["n"] == 10
    assert set(record["metrics"]) == {"fid", "kid", "kid_std", "precision", "recall"}  # metrics=null: the feature metrics
    assert record["metrics"]["fid"]["value"] > 0 and record["metrics"]["fid"]["floor"] > 0
    assert len(list(cache.glob("inception-*_fake-all-*_10.pt"))) == 1 and len(list(cache.glob("floor_inception-*"))) == 1
