"""Preemption and time limits: SIGUSR2 (and SIGTERM under SLURM) write last.pt and hand the job back to
its scheduler, and the job started again continues from its own last.pt by itself.

SLURM is played by its environment (SLURM_JOB_ID, then SLURM_RESTART_COUNT for the requeued job) and a
stand-in `scontrol` on PATH that records how it was called; submitit by its local executor, which
requeues a job the way it does on SLURM (the launcher's checkpoint(), then the job started again).
"""

import os
import signal
from importlib.util import find_spec
from pathlib import Path

import pytest

from gan_cli.faults import FAULT_VARIABLE
from gan_cli.training.checkpoint import load_checkpoint
from tests.forked import ForkedCommand, run_forked
from tests.helpers import FAST, assert_same_training_state

RUN = [*FAST, "train.channels_last=false", "log.every=1", "checkpoint.every=100", "samples.every=100"]


def fake_scontrol(folder: Path) -> dict:
    """Environment of a SLURM job (id 4242) whose `scontrol` writes its arguments to folder/scontrol.args."""
    folder.mkdir()
    script = folder / "scontrol"
    script.write_text(f'#!/bin/sh\necho "$@" >> {folder / "scontrol.args"}\n')
    script.chmod(0o755)
    return {"SLURM_JOB_ID": "4242", "PATH": f"{folder}:{os.environ['PATH']}"}


def test_sigusr2_writes_a_checkpoint_and_exits_with_the_resume_command(tmp_path):
    run_dir = tmp_path / "run"
    command = ForkedCommand(*RUN, "train.steps=100000", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    command.wait_for_line("step 3/")
    command.send_signal(signal.SIGUSR2)
    result = command.finish()
    assert result.returncode == 128 + signal.SIGUSR2, result.stderr
    step = int(result.stderr.split("stopped by SIGUSR2 at step ")[1].split("/")[0])
    assert step >= 3 and load_checkpoint(run_dir)["step"] == step
    assert f"Continue with: gan-train resume={run_dir}" in result.stderr and "Traceback" not in result.stderr
    assert "SIGUSR2 received (the scheduler's notice of preemption or of the time limit)" in result.stdout


def test_under_slurm_sigusr2_requeues_the_job_which_continues_by_itself(tmp_path):
    """Signalled after step 3, the run stops after step 4, writes last.pt and calls scontrol requeue; the
    same command started again by SLURM continues at step 4 and ends where an uninterrupted run ends."""
    slurm = fake_scontrol(tmp_path / "bin")
    args = [*RUN, "train.steps=8", f"hydra.run.dir={tmp_path / 'run'}"]
    preempted = run_forked(*args, cwd=tmp_path, env={**slurm, FAULT_VARIABLE: "after step 3=SIGUSR2"})
    assert preempted.returncode == 128 + signal.SIGUSR2, preempted.stderr
    assert load_checkpoint(tmp_path / "run")["step"] == 4
    assert (tmp_path / "bin" / "scontrol.args").read_text() == "requeue 4242\n"
    assert "Requeuing SLURM job 4242: it continues from there by itself" in preempted.stdout

    requeued = run_forked(*args, cwd=tmp_path, env={**slurm, "SLURM_RESTART_COUNT": "1"})
    assert requeued.returncode == 0, requeued.stderr
    assert "Continuing this run from its checkpoints/last.pt: restarted by the scheduler (SLURM_RESTART_COUNT=1)" in requeued.stdout
    assert "resuming at step 4" in requeued.stdout

    straight = run_forked(*RUN, "train.steps=8", f"hydra.run.dir={tmp_path / 'straight'}", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    a, b = load_checkpoint(tmp_path / "run"), load_checkpoint(tmp_path / "straight")
    assert a["step"] == b["step"] == 8
    assert_same_training_state(a, b)


def test_under_slurm_sigterm_writes_last_pt_and_leaves_the_requeue_to_slurm(tmp_path):
    slurm = fake_scontrol(tmp_path / "bin")
    result = run_forked(*RUN, "train.steps=8", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path,
                        env={**slurm, FAULT_VARIABLE: "after step 3=SIGTERM"})  # fmt: skip
    assert result.returncode == 128 + signal.SIGTERM
    assert load_checkpoint(tmp_path / "run")["step"] == 4
    assert "a preempted job is requeued by SLURM and continues from its last.pt by itself" in result.stdout
    assert not (tmp_path / "bin" / "scontrol.args").exists()  # scancel sends SIGTERM too: never requeue on it


@pytest.mark.slow
@pytest.mark.skipif(find_spec("hydra_plugins.hydra_submitit_launcher") is None, reason="the slurm extra is not installed")
def test_a_submitit_job_preempted_by_sigusr2_is_requeued_and_continues_from_its_last_checkpoint(tmp_path):
    """As on SLURM, with submitit's local executor: SIGUSR2 after step 3 (the job's own process signals
    itself there); the job writes last.pt at step 4, submitit requeues it, and the job started again
    finds its own last.pt and trains steps 5 to 8."""
    result = run_forked(
        "-m", "hydra/launcher=submitit_local", *RUN, "train.steps=8", "hydra.sweep.dir=sweep", cwd=tmp_path,
        env={FAULT_VARIABLE: "after step 3=SIGUSR2", "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (job,) = [p for p in (tmp_path / "sweep").iterdir() if p.name.startswith("0_")]
    log = (job / "train.log").read_text()
    assert "stopped by SIGUSR2 at step 4/8" in log and "Passing SIGUSR2 on to the launcher's own handler" in log
    assert "Continuing this run from its checkpoints/last.pt: an earlier attempt of this sweep job wrote it" in log
    assert "resuming at step 4" in log and log.count("Finished 8 steps") == 1
    assert load_checkpoint(job)["step"] == 8
