"""Runs that die: killed at any moment, stopped by signals, failed writes, unwritable folders.

The kill tests run real gan-train subprocesses and SIGKILL them. To land a kill inside a write,
they set GAN_CLI_SLOW_WRITES (gan_cli/files.py): every atomic write then pauses between writing its
`.partial` file and renaming it, and the test kills as soon as that partial file appears.
"""

import errno
import hashlib
import os
import shutil
import signal
import stat
from pathlib import Path

import pytest
import torch
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.errors import GanError
from gan_cli.files import PARTIAL_SUFFIX, SLOW_WRITES_VARIABLE
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import training_loop
from tests.helpers import FAST, TrainProcess, assert_same_training_state, compose_train, resume_tiny, run_cli, train_tiny

CHECKPOINT_EVERY = 10
SAMPLES_EVERY = 5
TOTAL_STEPS = 30
CHAIN = [*FAST, f"train.steps={TOTAL_STEPS}", "log.every=1", f"samples.every={SAMPLES_EVERY}"]
CHAIN += [f"checkpoint.every={CHECKPOINT_EVERY}"]
SLOW_WRITES = {SLOW_WRITES_VARIABLE: "0.5"}


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def kill_at(process: TrainProcess, run_dir: Path, where: str, step: int) -> None:
    """SIGKILL `process` during training step `step` ("step"), or inside the write of that step's
    sample grid ("grid") or checkpoint ("checkpoint"): when its partial file exists."""
    if where == "grid":
        process.wait_for_file(run_dir / "samples", f".step_{step:07d}.png.*{PARTIAL_SUFFIX}")
    else:
        process.wait_for_line(f"step {step}/")
        if where == "checkpoint":
            process.wait_for_file(run_dir / "checkpoints", f".last.pt.*{PARTIAL_SUFFIX}")
    process.process.kill()
    assert process.finish() == -signal.SIGKILL


def run_with_kills(tmp_path: Path, kills: list[tuple[str, int]]) -> Path:
    """Train CHAIN in tmp_path/run, SIGKILLed at each kill point in turn and resumed after each,
    then to the end. After every kill the newest complete checkpoint must load and be the last one
    written before the kill, and the next command must continue from it."""
    run_dir = tmp_path / "run"
    for where, step in kills:
        newest = (step - 1) // CHECKPOINT_EVERY * CHECKPOINT_EVERY  # 0: none written yet
        has_checkpoint = (run_dir / "checkpoints" / "last.pt").is_file()
        args = [f"resume={run_dir}"] if has_checkpoint else [*CHAIN, f"hydra.run.dir={run_dir}"]
        process = TrainProcess(*args, cwd=tmp_path, env=SLOW_WRITES)
        kill_at(process, run_dir, where, step)
        if has_checkpoint:
            assert "resuming at step" in process.output()
        if where != "step":  # the kill landed inside a write: its partial file is still there
            assert list(run_dir.rglob(f"*{PARTIAL_SUFFIX}")), process.output()
        if newest:
            checkpoint = load_checkpoint(run_dir)
            assert checkpoint["step"] == newest, (where, step)
            sampler_from_checkpoint(checkpoint)
        else:
            refused = run_cli("gan-train", f"resume={run_dir}", cwd=tmp_path)
            assert refused.returncode == 1 and "holds no complete checkpoint" in refused.stderr
    final = run_cli("gan-train", f"resume={run_dir}", cwd=tmp_path)
    assert final.returncode == 0, final.stderr
    return run_dir


def assert_complete_and_identical_to_an_uninterrupted_run(run_dir: Path, tmp_path: Path) -> None:
    assert not list(run_dir.rglob(f"*{PARTIAL_SUFFIX}"))  # resume removed every leftover
    grids = sorted(p.name for p in (run_dir / "samples").glob("*.png"))
    assert grids == [f"step_{step:07d}.png" for step in range(SAMPLES_EVERY, TOTAL_STEPS + 1, SAMPLES_EVERY)]
    for grid in grids:
        Image.open(run_dir / "samples" / grid).load()  # complete PNG files
    events = EventAccumulator(str(run_dir / "tb"))
    events.Reload()
    assert [e.step for e in events.Scalars("loss/D")] == list(range(1, TOTAL_STEPS + 1))  # no gap, no duplicate

    training_loop(compose_train(CHAIN), tmp_path / "straight", {"overrides": CHAIN})  # never interrupted
    a, b = load_checkpoint(run_dir), load_checkpoint(tmp_path / "straight")
    assert a["step"] == b["step"] == TOTAL_STEPS
    assert_same_training_state(a, b)


def test_killed_inside_writes_and_steps_resumes_and_loses_nothing(tmp_path):
    kills = [("grid", 15), ("checkpoint", 20), ("step", 23)]
    run_dir = run_with_kills(tmp_path, kills)
    assert_complete_and_identical_to_an_uninterrupted_run(run_dir, tmp_path)


@pytest.mark.slow
def test_killed_at_every_write_and_many_steps(tmp_path):
    writes = [("grid", s) for s in range(SAMPLES_EVERY, TOTAL_STEPS + 1, SAMPLES_EVERY)]
    writes += [("checkpoint", s) for s in range(CHECKPOINT_EVERY, TOTAL_STEPS + 1, CHECKPOINT_EVERY)]
    steps = [("step", s) for s in range(1, TOTAL_STEPS) if s % SAMPLES_EVERY]
    order = {"step": 0, "grid": 1, "checkpoint": 2}  # within a step: training, then grid, then checkpoint
    kills = sorted(writes + steps, key=lambda kill: (kill[1], order[kill[0]]))
    run_dir = run_with_kills(tmp_path, kills)
    assert_complete_and_identical_to_an_uninterrupted_run(run_dir, tmp_path)


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_writes_a_checkpoint_and_exits_with_a_clear_line(tmp_path, sig, status):
    run_dir = tmp_path / "run"
    args = [*FAST, "train.steps=100000", "log.every=1", "checkpoint.every=100000", f"hydra.run.dir={run_dir}"]
    process = TrainProcess(*args, cwd=tmp_path)
    process.wait_for_line("step 3/")
    process.process.send_signal(sig)
    assert process.finish() == status, process.output()
    stderr = "".join(process.stderr)
    assert f"stopped by {sig.name} at step" in stderr and f"gan-train resume={run_dir}" in stderr
    assert "Traceback" not in process.output()
    step = load_checkpoint(run_dir)["step"]
    assert step >= 3
    if sig == signal.SIGINT:  # (continuing is the same after either signal)
        assert run_cli("gan-train", f"resume={run_dir}", f"train.steps={step + 2}", cwd=tmp_path).returncode == 0


def test_a_second_signal_exits_at_once_and_keeps_the_last_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    args = [*FAST, "train.steps=100000", "log.every=1", "checkpoint.every=3", f"hydra.run.dir={run_dir}"]
    process = TrainProcess(*args, cwd=tmp_path, env={SLOW_WRITES_VARIABLE: "2"})
    process.wait_for_line("step 4/")  # the checkpoint of step 3 is complete
    kept = digest(run_dir / "checkpoints" / "last.pt")
    process.process.send_signal(signal.SIGINT)  # first: finish the step, write a checkpoint
    process.wait_for_file(run_dir / "checkpoints", f".last.pt.*{PARTIAL_SUFFIX}")  # that write is under way
    process.process.send_signal(signal.SIGINT)  # second: stop now
    assert process.finish() == 130
    assert "SIGINT again: stopping now" in process.output() and "Traceback" not in process.output()
    # The write the first signal started never finished: last.pt is still the one of step 3.
    assert digest(run_dir / "checkpoints" / "last.pt") == kept
    assert load_checkpoint(run_dir)["step"] == 3
    resumed = run_cli("gan-train", f"resume={run_dir}", "train.steps=5", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert "Removed checkpoints/.last.pt." in resumed.stdout  # the interrupted write's leftover
    assert not list(run_dir.rglob(f"*{PARTIAL_SUFFIX}"))


def test_a_full_disk_keeps_the_previous_checkpoint(tiny_run, tmp_path, monkeypatch):
    run_dir = tmp_path / "run"
    shutil.copytree(tiny_run, run_dir)  # checkpoints/last.pt of step 6
    last = run_dir / "checkpoints" / "last.pt"
    kept = digest(last)

    def save_until_the_disk_is_full(obj, f):
        f.write(b"PK\x03\x04 the first bytes of a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", save_until_the_disk_is_full)
    with pytest.raises(GanError) as err:
        resume_tiny(run_dir, ["train.steps=9"])  # the checkpoint of step 9 hits the full disk
    assert str(err.value) == f"could not write {last}: No space left on device (ENOSPC); any previous version of it is intact"
    monkeypatch.undo()
    assert digest(last) == kept and load_checkpoint(run_dir)["step"] == 6
    assert not list(run_dir.rglob(f"*{PARTIAL_SUFFIX}"))  # the failed write cleaned up after itself


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640)])
def test_written_files_get_the_mode_the_umask_gives(tmp_path, umask, mode):
    """As files written with open(): 0666 less the umask, so that others can read a shared run's files."""
    previous = os.umask(umask)
    try:
        train_tiny(tmp_path / "run")
    finally:
        os.umask(previous)
    for name in ("checkpoints/last.pt", "samples/step_0000006.png"):
        assert stat.S_IMODE((tmp_path / "run" / name).stat().st_mode) == mode, name


@pytest.mark.parametrize(
    "run_dir,message",
    [
        ("/proc/gan_cli_test/run", "cannot write the run directory /proc/gan_cli_test/run: /proc is not writable"),
        ("a_file/run", "is a file, not a folder"),
    ],
)
def test_an_unwritable_run_directory_is_refused_before_training(tmp_path, run_dir, message):
    (tmp_path / "a_file").write_text("not a folder")
    result = run_cli("gan-train", *FAST, f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and "step 1/" not in result.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["a_file"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders; /proc covers that case")
def test_a_read_only_folder_is_refused_before_training(tmp_path):
    folder = tmp_path / "read_only"
    folder.mkdir(mode=0o555)
    result = run_cli("gan-train", *FAST, f"hydra.run.dir={folder / 'run'}", cwd=tmp_path)
    assert result.returncode == 1 and f"{folder} is not writable (Permission denied" in result.stderr
    assert list(folder.iterdir()) == []

