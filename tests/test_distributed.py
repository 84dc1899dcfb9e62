"""Data-parallel training under torchrun (2 processes, gloo on the CPU), as users start it."""

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from gan_cli.errors import GanError
from gan_cli.training.distributed import per_process_batch
from tests.helpers import TINY, gan_train_path, run_clis, run_torchrun, tiny_model, train_tiny

# A model without batch norm (and no dropout) trained with plain SGD: the weights after a step are the
# weights before minus lr times the averaged gradient, so equal weights after every step mean equal
# gradients. Global batch 8: two processes take 4 rows each of every batch. In fp32: bf16 rounds a
# sum over 4 rows differently from one over 8, which is rounding, not a different gradient.
SGD_NO_DROPOUT = [
    "train.precision=fp32",
    "model.dropout=0",
    "model.input_dropout=0",
    "optimizer=sgd",
    "optimizer.generator.momentum=0",
    "optimizer.discriminator.momentum=0",
    "optimizer.lr=0.05",
    "log.every=1",
]
EXACT = TINY + tiny_model("mlp") + SGD_NO_DROPOUT


def weights(checkpoint: dict) -> dict[str, torch.Tensor]:
    stored = {**checkpoint["networks"], **{f"EMA of {net}": weights for net, weights in checkpoint["ema"].items()}}
    return {f"{net}.{name}": value for net, weights in stored.items() for name, value in weights.items()}


def max_difference(a: dict, b: dict) -> float:
    return max((weights(a)[k] - weights(b)[k]).abs().max().item() for k in weights(a))


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory) -> tuple[Path, list]:
    """A 2-process run of 2 steps, then resumed by 2 processes to step 4."""
    cwd = tmp_path_factory.mktemp("ddp")
    first = run_torchrun(2, *EXACT, "train.steps=2", cwd=cwd)
    assert first.returncode == 0, first.stderr
    (run_dir,) = (cwd / "outputs").glob("*/*")
    second = run_torchrun(2, f"resume={run_dir}", "train.steps=4", cwd=cwd)
    assert second.returncode == 0, second.stderr
    return run_dir, [first, second]


def test_ddp_writes_one_run_directory_from_rank_0(ddp_run):
    run_dir, results = ddp_run
    assert [p.name for p in run_dir.parent.parent.glob("*/*")] == [run_dir.name]  # both processes chose one folder
    log = (run_dir / "train.log").read_text()
    assert log.count("Finished 2 steps") == 1 and log.count("Finished 4 steps") == 1  # rank 0 logs, once
    assert "2 processes (gloo), each training on 4 of every batch of 8" in log
    assert log.count("step 3/4") == 1
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["last.pt"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == [f"step_000000{s}.png" for s in (2, 3, 4)]
    writers = {p.name.split(".")[-2] for p in (run_dir / "tb").iterdir()}  # events.out.tfevents.<time>.<host>.<pid>.<n>
    assert len(writers) == 2  # one process per attempt wrote TensorBoard events
    assert len(list((run_dir / ".hydra").glob("resume_*"))) == 1  # the resume's processes agreed on its record
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == 4
    for result in results:
        assert "Traceback" not in result.stderr


def test_ddp_steps_equal_one_process_over_the_global_batch(ddp_run, tmp_path):
    """Two processes each with half of every batch, resumed halfway by both, end where one process with
    the whole batch ends: DDP averaged the halves' gradients, and every rank resumed the same state."""
    run_dir, _ = ddp_run
    ddp = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    train_tiny(tmp_path / "one", SGD_NO_DROPOUT + ["train.steps=4"], model="mlp")
    one = torch.load(tmp_path / "one" / "checkpoints" / "last.pt", weights_only=True)
    assert max_difference(ddp, one) < 1e-6
    assert torch.equal(ddp["rng"], one["rng"]) and ddp["data"]["position"] == one["data"]["position"]
    # The comparison can fail: one process on half the batch ends elsewhere.
    train_tiny(tmp_path / "half", SGD_NO_DROPOUT + ["train.steps=4", "train.batch_size=4"], model="mlp")
    half = torch.load(tmp_path / "half" / "checkpoints" / "last.pt", weights_only=True)
    assert max_difference(half, one) > 1e-4


def test_a_batch_must_split_evenly_over_the_processes():
    assert per_process_batch(64, 4) == 16
    with pytest.raises(GanError, match="train.batch_size=10 does not split evenly over the 4 processes"):
        per_process_batch(10, 4)
    with pytest.raises(GanError, match="use a multiple of 4"):
        per_process_batch(2, 4)


def test_torchrun_refuses_an_uneven_batch_and_a_sweep_before_creating_anything(tmp_path):
    torchrun = ("torchrun", "--standalone", "--nproc_per_node=2", gan_train_path())
    uneven, sweep = run_clis(
        [(*torchrun, *EXACT, "train.batch_size=7"), (*torchrun, "-m", *EXACT, "seed=1,2")], cwd=tmp_path
    )
    assert uneven.returncode != 0 and sweep.returncode != 0
    assert "gan-train: error: train.batch_size=7 does not split evenly over the 2 processes" in uneven.stderr
    assert "cannot run inside torchrun, which would run it once per process" in sweep.stderr
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sigterm_stops_every_process_at_the_same_step_with_a_checkpoint(tmp_path):
    torchrun = subprocess.Popen(
        [str(Path(sys.executable).with_name("torchrun")), "--standalone", "--nproc_per_node=2", gan_train_path(),
         *EXACT, "train.steps=100000", "log.every=10", "checkpoint.every=1000", "samples.every=1000"],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    for line in torchrun.stdout:
        if line.startswith("step 20/"):
            break
    torchrun.send_signal(signal.SIGTERM)  # torchrun passes it on to every process
    _, stderr = torchrun.communicate(timeout=120)
    stops = re.findall(r"gan-train: stopped by SIGTERM at step (\d+)/100000", stderr)
    assert len(stops) == 2 and stops[0] == stops[1], stderr  # both processes, the same step
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == int(stops[0])


@pytest.mark.slow
def test_a_nan_stops_every_process_at_the_same_step(tmp_path):
    result = run_torchrun(2, *EXACT, "optimizer.lr=1e30", "train.steps=20", cwd=tmp_path)
    assert result.returncode != 0
    stops = re.findall(r"gan-train: error: training diverged at step (\d+)", result.stderr)
    assert len(stops) == 2 and stops[0] == stops[1], result.stderr
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    assert not (run_dir / "checkpoints").exists()
