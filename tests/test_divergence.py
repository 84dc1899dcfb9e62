"""train.on_divergence: runs that fail without a NaN, on the guard itself and on a real run in which
D wins (its learning rate 1e-2, G's 1e-7: G barely moves, D rejects its fakes with certainty)."""

import logging
import re

import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.errors import GanError
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.divergence import DivergenceGuard, last_good_checkpoint
from gan_cli.validation import check_train_config
from tests.forked import run_forked
from tests.helpers import FAST, compose_train, train_tiny

SETTINGS = OmegaConf.create({"steps": 3, "d_loss_below": 0.01, "fake_score_below": 0.01, "loss_above": 100.0})
HEALTHY = {"loss/D": 1.2, "D(x)": 0.6, "D(G(z))": 0.4, "loss/G": 0.9}
D_WINS = {"loss/D": 0.001, "D(x)": 0.999, "D(G(z))": 0.0005, "loss/G": 8.0}
# A real divergence without NaN, fast: D's rate 1e-2, G's 1e-7. D's loss falls under 0.01 within ten steps.
D_WINS_RUN = ["train.channels_last=false", "optimizer.generator.lr=1e-7", "optimizer.discriminator.lr=1e-2", "log.every=1"]


def tensors(scalars: dict[str, float]) -> dict[str, torch.Tensor]:
    return {name: torch.tensor(value) for name, value in scalars.items()}


def guard(tmp_path, policy="warn", probability=True) -> DivergenceGuard:
    return DivergenceGuard(policy, SETTINGS, tmp_path, torch.device("cpu"), probability)


def feed(guard: DivergenceGuard, steps: list[dict[str, float]], look_every: int = 1) -> None:
    for step, scalars in enumerate(steps, start=1):
        guard.observe(step, tensors(scalars), look=step % look_every == 0)


def test_d_winning_for_the_set_number_of_steps_is_named_with_its_first_step(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        feed(guard(tmp_path), [HEALTHY, D_WINS, D_WINS], look_every=1)
    assert "diverged" not in caplog.text  # two steps in a row: not yet
    with caplog.at_level(logging.WARNING):
        feed(guard(tmp_path), [HEALTHY, D_WINS, D_WINS, D_WINS, D_WINS, D_WINS, HEALTHY], look_every=1)
    (line,) = [r.message for r in caplog.records if "diverged" in r.message]  # named once for the whole episode
    assert line.startswith("training diverged at step 2: D won (loss/D below 0.01 and D(G(z)) below 0.01: G's gradient "
                           "vanishes) for 3 steps in a row")
    assert "train.on_divergence=warn" in line


def test_a_recovered_run_counts_again_from_its_next_sign(tmp_path, caplog):
    with caplog.at_level(logging.WARNING):
        feed(guard(tmp_path), [D_WINS, D_WINS, HEALTHY, D_WINS, D_WINS, HEALTHY, D_WINS, D_WINS, D_WINS], look_every=1)
    assert [r.message.split(":")[0] for r in caplog.records] == ["training diverged at step 7"]


def test_the_guard_reads_the_device_only_where_the_loop_looks(tmp_path, monkeypatch, caplog):
    checks = []
    watched = guard(tmp_path)
    monkeypatch.setattr(watched, "_check", lambda: checks.append(watched.streaks.tolist()))
    feed(watched, [D_WINS] * 10, look_every=5)
    assert checks == [[5, 0], [10, 0]]  # counted on the device every step, read at steps 5 and 10
    assert watched.starts.tolist() == [1, 0]


def test_losses_without_bound_are_a_divergence_of_any_loss(tmp_path, caplog):
    growing = [{**HEALTHY, "loss/G": 10.0**k} for k in range(6)]  # 1, 10, 100, 1e3, 1e4, 1e5: above 100 from step 4 on
    with caplog.at_level(logging.WARNING):
        feed(guard(tmp_path, probability=False), growing)
    assert [r.message.split(";")[0] for r in caplog.records] == [
        "training diverged at step 4: losses without bound (a loss beyond 100.0 in magnitude) for 3 steps in a row"
    ]
    with caplog.at_level(logging.WARNING):  # a critic's large negative loss counts too
        feed(guard(tmp_path, probability=False), [{"loss/D": -500.0}] * 3)
    assert "training diverged at step 1: losses without bound" in caplog.records[-1].message


def test_missing_scalars_and_critics_are_no_sign(tmp_path, caplog):
    """A family without D logs no loss/D or D(G(z)); a critic's raw D(G(z)) near 0 says nothing."""
    with caplog.at_level(logging.WARNING):
        feed(guard(tmp_path), [{"loss/reconstruction": 0.001}] * 5 + [{}] * 5)
        feed(guard(tmp_path, probability=False), [D_WINS] * 5)
    assert caplog.records == []


def test_stop_names_the_newest_checkpoint_written_before_the_divergence(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    for name, step in (("step_0000002.pt", 2), ("step_0000004.pt", 4), ("best.pt", 3), ("last.pt", 6)):
        torch.save({"step": step}, folder / name)
    (folder / "broken.pt").write_bytes(b"not a checkpoint")
    stopping = guard(tmp_path, policy="stop")
    with pytest.raises(GanError) as err:
        feed(stopping, [HEALTHY] * 4 + [D_WINS] * 3)  # diverged at step 5, noticed at step 7
    message = str(err.value)
    assert message.startswith("training diverged at step 5: D won (") and "stopped (train.on_divergence=stop)" in message
    assert f"The last good checkpoint is {folder / 'step_0000004.pt'} (step 4)" in message
    assert f"gan-train resume={folder / 'step_0000004.pt'} optimizer.lr=<lower>" in message
    assert f"resume={tmp_path} " in last_good_checkpoint(tmp_path, before=7)  # last.pt: the run directory
    assert "No checkpoint was written before step 2" in last_good_checkpoint(tmp_path, before=2)


def first_streak_start(run_dir, steps: int) -> int:
    """The first step of the first run of `steps` logged steps in a row where D won (from TensorBoard)."""
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    d_loss, fake = ([e.value for e in events.Scalars(tag)] for tag in ("loss/D", "D(G(z))"))
    won = [a < 0.01 and b < 0.01 for a, b in zip(d_loss, fake)]
    return next(i + 1 for i in range(len(won)) if all(won[i : i + steps]))


def test_a_run_where_d_wins_warns_and_trains_on(tmp_path, caplog, one_thread):
    with caplog.at_level(logging.WARNING):
        train_tiny(tmp_path, [*D_WINS_RUN, "train.steps=20", "train.divergence.steps=5"])
    start = first_streak_start(tmp_path, 5)
    (line,) = [r.message for r in caplog.records if "diverged" in r.message]
    assert line.startswith(f"training diverged at step {start}: D won (")
    assert load_checkpoint(tmp_path)["step"] == 20  # warn: the run went on to its end


def test_a_run_where_d_wins_stops_with_the_resume_command_of_the_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = [*FAST, *D_WINS_RUN, "train.steps=40", "train.on_divergence=stop", "train.divergence.steps=5"]
    args += ["checkpoint.every=2", "checkpoint.keep_every=2", f"hydra.run.dir={run_dir}"]
    result = run_forked(*args, cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    start = first_streak_start(run_dir, 5)
    stopped = start + 5 - 1  # noticed at the step the sign had held 5 steps (log.every=1)
    good = 2 * ((start - 1) // 2)  # the newest snapshot written before the divergence began
    assert line.startswith(f"gan-train: error: training diverged at step {start}: D won ("), line
    assert f"gan-train resume={run_dir / 'checkpoints' / f'step_{good:07d}.pt'} optimizer.lr=<lower>" in line
    assert load_checkpoint(run_dir)["step"] == 2 * ((stopped - 1) // 2)  # nothing of the stopping step was written
    assert f"step {stopped}/40" not in result.stdout


def test_losses_beyond_their_bound_on_a_real_run(tmp_path, caplog, one_thread):
    """The same run's G loss climbs past 5 as D wins: with loss_above=5 that is the second sign."""
    with caplog.at_level(logging.WARNING):
        train_tiny(tmp_path, [*D_WINS_RUN, "train.steps=12", "train.divergence.steps=3", "train.divergence.loss_above=5",
                              "train.divergence.d_loss_below=0"])  # fmt: skip
    events = EventAccumulator(str(tmp_path / "tb"))
    events.Reload()
    above = [e.value > 5 for e in events.Scalars("loss/G")]
    start = next(i + 1 for i in range(len(above)) if all(above[i : i + 3]))
    (line,) = [r.message for r in caplog.records if "diverged" in r.message]
    assert line.startswith(f"training diverged at step {start}: losses without bound (a loss beyond 5.0 in magnitude)")


def test_a_healthy_run_is_never_called_diverged(tmp_path, caplog, one_thread):
    with caplog.at_level(logging.WARNING):  # even a sign of one step would be named
        train_tiny(tmp_path, ["train.divergence.steps=1", "train.steps=8", "log.every=1"])
    assert "diverged" not in caplog.text


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.on_divergence=halt", "train.on_divergence='halt' must be one of warn, stop"),
        ("train.divergence.steps=0", "train.divergence.steps=0 must be positive"),
        ("train.divergence.fake_score_below=2", "train.divergence.fake_score_below=2.0 must be in [0, 1]"),
        ("train.divergence.d_loss_below=-1", "train.divergence.d_loss_below=-1.0 must not be negative"),
    ],
)
def test_divergence_settings_that_cannot_work_are_refused(override, message):
    with pytest.raises(GanError, match=re.escape(message)):
        check_train_config(compose_train([override]))
