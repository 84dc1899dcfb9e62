"""Non-finite losses and gradients: train.on_nan=stop|skip, on real diverging runs and on the guard itself."""

import dataclasses
import logging

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

import gan_cli.games.adversarial as adversarial
from gan_cli.errors import GanError
from gan_cli.training.checkpoint import load_checkpoint, save_checkpoint
from gan_cli.training.nan_guard import NanGuard
from tests.helpers import run_cli, train_tiny

# A learning rate this absurd makes the first update blow a network's weights up to ~1e30: the next
# forward pass overflows, and the losses are NaN from then on. A real divergence, only faster.
ABSURD_LR = "1e30"


def adam_steps(optimizer_state: dict) -> int:
    """How many updates an Adam optimizer applied (its per-parameter step counter)."""
    return int(next(iter(optimizer_state["state"].values()))["step"])


def test_stop_names_the_step_and_loss_and_keeps_the_last_good_checkpoint(tmp_path):
    train_tiny(tmp_path)  # a healthy run: checkpoints/last.pt of step 6
    last = tmp_path / "checkpoints" / "last.pt"
    kept = last.read_bytes()
    # Step 7 is the first with the absurd rate: D's update is finite, and then G's loss on the blown-up
    # D is NaN. The guard reads its device-side flags only at step 8 (the first log step): the message
    # must still name step 7, and nothing may be written.
    result = run_cli(
        "gan-train", f"resume={tmp_path}", f"optimizer.lr={ABSURD_LR}", "train.steps=20", "log.every=4",
        "samples.every=100", "checkpoint.every=5", cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Resume changes optimizer.lr: 0.001 -> 1e+30" in result.stdout
    assert "gan-train: error: training diverged at step 7: the generator's loss became NaN or inf" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert last.read_bytes() == kept
    assert sorted(p.name for p in (tmp_path / "samples").iterdir()) == ["step_0000003.png", "step_0000006.png"]


def test_stop_names_the_discriminator_when_its_loss_goes_first(tmp_path):
    # G's update blows G up at step 1; at step 2 D's loss on G's overflowing images is the first NaN.
    with pytest.raises(GanError, match="diverged at step 2: the discriminator's loss became NaN or inf"):
        train_tiny(tmp_path, [f"optimizer.generator.lr={ABSURD_LR}"])
    assert not (tmp_path / "checkpoints").exists()  # the first checkpoint (step 3) was never written


def test_skip_stops_once_more_steps_than_the_limit_were_skipped(tmp_path, caplog):
    overrides = ["train.on_nan=skip", "train.max_skipped_steps=2", f"optimizer.lr={ABSURD_LR}"]
    with caplog.at_level(logging.WARNING), pytest.raises(GanError) as err:
        train_tiny(tmp_path, overrides)
    assert "3 steps had non-finite losses or gradients, more than train.max_skipped_steps=2" in str(err.value)
    assert "stopped at step 3" in str(err.value)
    assert "step 1: dropped the non-finite update of generator (loss)" in caplog.text
    assert "step 2: dropped the non-finite update of discriminator (loss) and generator (loss)" in caplog.text
    assert not (tmp_path / "checkpoints").exists()


class LossWithOneNonFiniteStep:
    """The configured adversarial loss, except that D's loss is NaN at one chosen update, like a rare overflow."""

    def __init__(self, loss, bad_update: int):
        self.loss, self.bad_update, self.d_updates = loss, bad_update, 0

    def d_loss(self, real_logits, fake_logits):
        self.d_updates += 1
        value = self.loss.d_loss(real_logits, fake_logits)
        return value * float("nan") if self.d_updates == self.bad_update else value

    def __getattr__(self, name):  # g_loss, score, critic: the configured loss's
        return getattr(self.loss, name)


def test_skip_drops_the_non_finite_update_and_continues(tmp_path, monkeypatch, caplog):
    build_objective = adversarial.build_objective

    def objective_with_one_bad_step(loss_cfg, model_cfg):
        objective = build_objective(loss_cfg, model_cfg)
        return dataclasses.replace(objective, adversarial=LossWithOneNonFiniteStep(objective.adversarial, bad_update=3))

    monkeypatch.setattr(adversarial, "build_objective", objective_with_one_bad_step)
    with caplog.at_level(logging.WARNING):
        train_tiny(tmp_path, ["train.on_nan=skip"])
    assert "step 3: dropped the non-finite update of discriminator (loss); 1 step(s) skipped so far, at most 100" in caplog.text
    checkpoint = load_checkpoint(tmp_path)
    assert checkpoint["step"] == 6 and checkpoint["skipped_steps"] == 1
    # D's optimizer applied 5 of its 6 updates, G's all 6; the weights are finite.
    optimizers = checkpoint["optimizers"]
    assert adam_steps(optimizers["discriminator"]) == 5 and adam_steps(optimizers["generator"]) == 6
    assert all(value.isfinite().all() for value in checkpoint["networks"]["D"].values() if value.is_floating_point())
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    assert [(e.step, e.value) for e in events.Scalars("train/skipped_steps")] == [(2, 0), (4, 1), (6, 1)]


def test_stop_is_the_default_and_logs_no_skipped_step_scalar(tiny_run):
    checkpoint = load_checkpoint(tiny_run)
    assert checkpoint["config"]["train"]["on_nan"] == "stop" and checkpoint["skipped_steps"] == 0
    events = EventAccumulator(str(tiny_run / "tb"))
    events.Reload()
    assert "train/skipped_steps" not in events.Tags()["scalars"]


def non_finite_gradient_update(policy: str) -> tuple[NanGuard, torch.nn.Parameter]:
    """One update whose loss is finite (0) but whose gradient is not: d sqrt(|w|) / dw at w = 0."""
    weight = torch.nn.Parameter(torch.zeros(3))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    guard = NanGuard(policy, max_skipped_steps=5, updates=("discriminator",), device=torch.device("cpu"))
    loss = weight.abs().sqrt().sum()
    loss.backward()
    assert loss.isfinite() and not weight.grad.isfinite().all()
    guard.apply_update("discriminator", loss, optimizer, torch.amp.GradScaler("cpu", enabled=False), step=4)
    return guard, weight


def test_a_non_finite_gradient_with_a_finite_loss_is_caught():
    guard, weight = non_finite_gradient_update("stop")
    guard.end_step(4, synchronise=False)  # no sync: nothing is checked between boundaries
    with pytest.raises(GanError, match="diverged at step 4: the discriminator's gradients became NaN or inf"):
        guard.end_step(5, synchronise=True)

    guard, weight = non_finite_gradient_update("skip")
    guard.end_step(4, synchronise=True)
    assert guard.skipped_steps == 1 and torch.equal(weight.detach(), torch.zeros(3))  # the update was dropped


def test_a_checkpoint_with_non_finite_weights_is_never_written(tiny_run, tmp_path):
    checkpoint = load_checkpoint(tiny_run)
    name = next(iter(checkpoint["networks"]["D"]))
    checkpoint["networks"]["D"][name][0] = float("inf")
    path = tmp_path / "last.pt"
    path.write_bytes(b"the previous checkpoint")
    with pytest.raises(GanError, match=f"not writing {path}: network D's {name} hold NaN or inf at step 6"):
        save_checkpoint(checkpoint, path)
    assert path.read_bytes() == b"the previous checkpoint"
