"""Evaluations during training: metrics.jsonl, TensorBoard eval/ scalars, best.pt, resume, skipping."""

import json
import logging

import pytest
import torch
from hydra import initialize_config_module
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.errors import GanError
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import training_loop
from gan_cli.training.resume import resumed_config
from tests.helpers import train_tiny


@pytest.fixture
def evaluated(mnist_root):
    """Overrides that evaluate the TINY run (synthetic 1x28x28 data) every 2 steps on 100 images."""
    return ["eval.every=2", "eval.n=100", "eval.required=true", f"eval.data_root={mnist_root}", "eval.metrics=[fid,coverage]"]


def read_lines(run_dir):
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def test_evaluations_go_to_metrics_jsonl_tensorboard_and_best_pt(tmp_path, evaluated):
    best = train_tiny(tmp_path, evaluated)  # 6 steps

    lines = read_lines(tmp_path)
    assert [line["step"] for line in lines] == [2, 4, 6]
    assert set(lines[0]) == {"step", "fid", "classes_covered", "class_entropy", "class_kl_uniform", "n", "reference"}
    assert lines[0]["n"] == 100 and lines[0]["reference"] == "mnist/train"

    fids = [line["fid"] for line in lines]
    assert best == min(fids)  # training_loop returns the best value of eval.best
    best_step = lines[fids.index(best)]["step"]
    checkpoint = load_checkpoint(tmp_path / "checkpoints" / "best.pt")
    assert checkpoint["step"] == best_step
    assert checkpoint["evaluation"] == {"best_metric": "fid", "best": best, "best_step": best_step}
    assert load_checkpoint(tmp_path)["evaluation"]["best"] == best  # last.pt keeps the bookkeeping too

    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, pytest.approx(e.value, rel=1e-6)) for e in events.Scalars("eval/fid")] == [
        (line["step"], line["fid"]) for line in lines
    ]
    assert "eval/classes_covered" in events.Tags()["scalars"]


def test_resume_keeps_the_best_and_does_not_repeat_lines(tmp_path, evaluated):
    common = [*evaluated, "eval.best=class_kl_uniform", "checkpoint.every=4", "samples.every=4"]
    straight = train_tiny(tmp_path / "straight", [*common, "train.steps=8"])

    train_tiny(tmp_path / "resumed", [*common, "train.steps=4"])
    first_half = load_checkpoint(tmp_path / "resumed")
    # A run killed after evaluating step 6 but before its next checkpoint left a line the resumed run rewrites.
    with open(tmp_path / "resumed" / "metrics.jsonl", "a") as f:
        f.write(json.dumps({"step": 6, "fid": -1.0}) + "\n" + '{"step": 8, "fi')
    with initialize_config_module(version_base="1.3", config_module="gan_cli.configs"):
        cfg, overrides = resumed_config(first_half, ["train.steps=8"])
        resumed = training_loop(cfg, tmp_path / "resumed", {"overrides": overrides}, first_half)

    assert read_lines(tmp_path / "resumed") == read_lines(tmp_path / "straight")  # same steps, same values
    assert [line["step"] for line in read_lines(tmp_path / "resumed")] == [2, 4, 6, 8]
    assert resumed == straight
    a, b = (load_checkpoint(tmp_path / run / "checkpoints" / "best.pt") for run in ("straight", "resumed"))
    assert a["step"] == b["step"] and a["evaluation"] == b["evaluation"]
    assert all(torch.equal(a["networks"]["G"][name], b["networks"]["G"][name]) for name in a["networks"]["G"])


def test_other_data_is_skipped_with_one_line_unless_required(tmp_path, caplog, mnist_root):
    with caplog.at_level(logging.INFO):
        assert train_tiny(tmp_path / "fake", ["train.steps=2"]) is None
    skipped = [r.message for r in caplog.records if "Evaluation skipped" in r.message]
    assert len(skipped) == 1 and "dataset=fake" in skipped[0] and "eval.required=true" in skipped[0]
    assert not (tmp_path / "fake" / "metrics.jsonl").exists()
    assert not (tmp_path / "fake" / "checkpoints" / "best.pt").exists()

    with pytest.raises(GanError, match="dataset=fake has images of shape 3x32x32, but the shipped evaluator"):
        train_tiny(
            tmp_path / "colour",
            ["dataset.channels=3", "dataset.image_size=32", "eval.required=true", f"eval.data_root={mnist_root}"],
        )
    assert not (tmp_path / "colour" / "checkpoints").exists()  # refused before any step
