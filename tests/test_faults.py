"""Runs that die: killed at every point of a run, stopped by signals, failed writes, unwritable folders.

The kill tests inject faults deterministically (gan_cli/faults.py): GAN_CLI_FAULT names the exact
point where the process signals itself, before an atomic write's partial file, after N bytes of it,
before its rename, after it, or between two steps; GAN_CLI_FAULT_TRACE lists every point a run
passes, so the walk below kills a run at each point of an uninterrupted run, with nothing left to timing.
The commands run in processes forked from a server that imported gan_cli once (tests/forked.py): the
same gan-train code from its command line on, without seconds of imports per command.
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

from gan_cli.errors import GanError
from gan_cli.faults import FAULT_VARIABLE, TRACE_VARIABLE
from gan_cli.files import PARTIAL_SUFFIX
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.training.checkpoint import load_checkpoint
from tests.forked import run_forked
from tests.helpers import FAST, TrainProcess, assert_same_training_state, resume_tiny, run_cli, train_tiny

# 4 steps of a tiny DCGAN on synthetic data: a grid and a checkpoint at steps 2 and 4.
WALK = [*FAST, "dataset.num_samples=64", "train.batch_size=8", "train.channels_last=false", "log.every=1"]
WALK += ["train.steps=4", "samples.every=2", "checkpoint.every=2"]
STAGES = ("before-partial", "partial", "before-rename", "after-rename")  # of every atomic write
PARTIAL_BYTES = 100  # where a kill inside a partial file lands: inside the smallest file written (a PNG grid)


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def written(point: str) -> list[str]:
    """The points of one atomic write of `point`'s file (`checkpoints/last.pt#2`)."""
    return [f"{point} {stage}" for stage in STAGES]


def uninterrupted_run(cwd: Path, args: list[str], env: dict | None = None) -> tuple[Path, list[str]]:
    """`args` run without a fault into cwd/run: its run directory and the fault points it passed, in order."""
    result = run_forked(*args, f"hydra.run.dir={cwd / 'run'}", cwd=cwd, env={**(env or {}), TRACE_VARIABLE: str(cwd / "trace")})
    assert result.returncode == 0, result.stderr
    return cwd / "run", (cwd / "trace").read_text().splitlines()


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> tuple[Path, list[str]]:
    return uninterrupted_run(tmp_path_factory.mktemp("uninterrupted"), WALK)


def assert_same_weights(run_dir: Path, reference: Path) -> None:
    assert_same_training_state(load_checkpoint(run_dir), load_checkpoint(reference))


def assert_every_kill_recovers(args: list[str], reference: Path, points: list[str], cwd: Path, env=lambda run_dir: {}) -> None:
    """For each point a run of `args` passes: SIGKILL a new run there; the newest complete checkpoint
    (the last last.pt renamed before the kill; written every 2 steps) must load, and continuing
    (resume, or the same command again when no checkpoint was complete) must end as `reference`:
    the same weights, grids, evaluations, and no partial file left. `env(run_dir)`: each run's extra
    environment."""
    for index, point in enumerate(points):
        run_dir = cwd / f"kill{index}"
        fault = f"{point} {PARTIAL_BYTES}" if point.endswith(" partial") else point
        killed = run_forked(*args, f"hydra.run.dir={run_dir}", cwd=cwd, env={**env(run_dir), FAULT_VARIABLE: fault})
        assert killed.returncode == -signal.SIGKILL, f"{point}: {killed.stderr}"
        complete = sum(p.startswith("checkpoints/last.pt#") and p.endswith("after-rename") for p in points[: index + 1])
        leftovers = list(run_dir.rglob(f"*{PARTIAL_SUFFIX}"))
        assert bool(leftovers) == point.endswith((" partial", " before-rename")), point
        if complete:
            checkpoint = load_checkpoint(run_dir)
            assert checkpoint["step"] == 2 * complete, point
            sampler_from_checkpoint(checkpoint)
            again = run_forked(f"resume={run_dir}", cwd=cwd, env=env(run_dir))
            assert f"resuming at step {2 * complete}" in again.stdout, point
        else:
            refused = run_forked(f"resume={run_dir}", cwd=cwd)
            assert refused.returncode == 1 and "holds no complete checkpoint" in refused.stderr, point
            again = run_forked(*args, f"hydra.run.dir={run_dir}", cwd=cwd, env=env(run_dir))  # the same command, from the start
        assert again.returncode == 0, f"{point}: {again.stderr}"
        assert ("the partial file of a write that was interrupted" in again.stdout) == bool(leftovers), point
        assert not list(run_dir.rglob(f"*{PARTIAL_SUFFIX}")), point
        assert sorted(p.name for p in (run_dir / "samples").iterdir()) == sorted(p.name for p in (reference / "samples").iterdir())
        for grid in (run_dir / "samples").iterdir():
            Image.open(grid).load()  # complete PNG files
        assert_same_weights(run_dir, reference)
        if (reference / "metrics.jsonl").exists():
            assert (run_dir / "metrics.jsonl").read_text() == (reference / "metrics.jsonl").read_text(), point
            assert load_checkpoint(run_dir / "checkpoints" / "best.pt")["step"] == load_checkpoint(reference / "checkpoints" / "best.pt")["step"]


def test_the_walk_covers_every_write_and_every_step(uninterrupted):
    _, points = uninterrupted
    grid, last = "samples/step_000000{}.png#1", "checkpoints/last.pt#{}"
    assert points == [
        "after step 1",
        *written(grid.format(2)), *written(last.format(1)), "after step 2",
        "after step 3",
        *written(grid.format(4)), *written(last.format(2)), "after step 4",
    ]  # fmt: skip


def test_killed_at_every_point_the_newest_checkpoint_loads_and_resuming_is_bit_identical(uninterrupted, tmp_path):
    assert_every_kill_recovers(WALK, *uninterrupted, tmp_path)


# A fuller run for the slow set: evaluations at steps 3 and 6 (metrics.jsonl, best.pt, after the real
# images' scores are computed and cached), a kept snapshot at step 4, grids at 3 and 6.
FULL_WALK = [*WALK, "train.steps=6", "samples.every=3", "checkpoint.keep_every=4"]
FULL_WALK += ["eval.every=3", "eval.required=true", "eval.n=10"]


@pytest.mark.slow
def test_killed_at_every_point_of_an_evaluated_run_loses_nothing(mnist_root, tmp_path):
    """The uninterrupted run fills the cache of the real images' scores (its writes are atomic like
    the others); every killed run then finds it filled, and passes the run's own points only."""
    cache = {"GAN_CLI_CACHE": str(tmp_path / "cache")}
    reference, points = uninterrupted_run(tmp_path, FULL_WALK, cache)
    writes = {point.split("#")[0] for point in points if "#" in point}
    assert {"checkpoints/best.pt", "checkpoints/step_0000004.pt", "samples/step_0000006.png"} <= writes
    assert any(write.startswith("cache/") for write in writes), writes
    own_points = [point for point in points if not point.startswith("cache/")]
    assert_every_kill_recovers(FULL_WALK, reference, own_points, tmp_path, env=lambda run_dir: cache)


def test_a_kill_inside_a_partial_file_leaves_exactly_the_bytes_written(tmp_path):
    run_dir = tmp_path / "run"
    killed = run_forked(*WALK, f"hydra.run.dir={run_dir}", cwd=tmp_path, env={FAULT_VARIABLE: "checkpoints/last.pt#1 partial 1000"})
    assert killed.returncode == -signal.SIGKILL
    (partial,) = (run_dir / "checkpoints").glob(f".last.pt.*{PARTIAL_SUFFIX}")
    assert partial.stat().st_size == 1000 and partial.read_bytes()[:4] == b"PK\x03\x04"  # the start of a checkpoint
    assert not (run_dir / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize(
    "fault,message",
    [("checkpoints/last.pt before-rename", "names no fault point"), ("after step 2=SIGNOPE", "SIGNOPE is not a signal name")],
)
def test_a_malformed_fault_is_refused(tmp_path, fault, message):
    result = run_forked(*WALK, f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path, env={FAULT_VARIABLE: fault})
    assert result.returncode == 1 and f"gan-train: error: GAN_CLI_FAULT: {fault!r}" in result.stderr, result.stderr
    assert message in result.stderr


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
    """SIGINT after step 4, so the run stops after step 5 and writes its checkpoint; a second SIGINT
    inside that write (its partial file has 1000 bytes) ends the process there."""
    run_dir = tmp_path / "run"
    args = [*WALK, "train.steps=100", "checkpoint.every=3", f"hydra.run.dir={run_dir}"]
    faults = "after step 4=SIGINT; checkpoints/last.pt#2 partial 1000=SIGINT"
    result = run_forked(*args, cwd=tmp_path, env={FAULT_VARIABLE: faults})
    assert result.returncode == 130
    assert "SIGINT again: stopping now" in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert "step 5/100" in result.stdout and "step 6/100" not in result.stdout
    (partial,) = (run_dir / "checkpoints").glob(f".last.pt.*{PARTIAL_SUFFIX}")
    assert partial.stat().st_size == 1000  # the write the first signal started never finished
    assert load_checkpoint(run_dir)["step"] == 3  # last.pt is still the one of step 3
    resumed = run_forked(f"resume={run_dir}", "train.steps=5", cwd=tmp_path)
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

