"""Sweeps: job folders, per-job failures, gan-report, TensorBoard's HPARAMS, Optuna, launchers, restarts."""

import csv
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from gan_cli.cli import check_plugins, quote_path, report
from gan_cli.cli.jobs import job_device
from gan_cli.cli.run_dir import MAX_JOB_DIR, job_dir_name
from gan_cli.errors import GanError
from gan_cli.faults import FAULT_VARIABLE
from gan_cli.validation import check_train_config
from tests.forked import run_forked
from tests.helpers import FAST, TrainProcess, assert_user_error, run_cli

# Four steps per job on synthetic 1x28x28 data, evaluated (against real MNIST: eval.required) at steps 2 and 4.
EVALUATED = FAST + ["train.steps=4", "log.every=2", "eval.required=true", "eval.n=10", "eval.every=2"]


def jobs_of(sweep: Path) -> list[Path]:
    return sorted((p for p in sweep.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: int(p.name.split("_")[0]))


def best_fid(job: Path) -> float:
    return min(json.loads(line)["fid"] for line in (job / "metrics.jsonl").read_text().splitlines())


def report_rows(sweep: Path) -> list[dict]:
    with open(sweep / "report.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, mnist_root) -> Path:
    """gan-train -m loss=nonsaturating,lsgan optimizer.lr=1e-4,2e-4: four evaluated jobs."""
    cwd = tmp_path_factory.mktemp("sweep")
    result = run_cli(
        "gan-train", "-m", *EVALUATED, "loss=nonsaturating,lsgan", "optimizer.lr=1e-4,2e-4", "hydra.sweep.dir=sweep", cwd=cwd
    )
    assert result.returncode == 0, result.stderr
    return cwd / "sweep"


def test_every_combination_runs_in_its_own_named_folder(sweep):
    jobs = jobs_of(sweep)
    expected = [("nonsaturating", "0.0001"), ("nonsaturating", "0.0002"), ("lsgan", "0.0001"), ("lsgan", "0.0002")]
    assert len(jobs) == 4
    for number, (job, (loss, lr)) in enumerate(zip(jobs, expected)):
        assert job.name.startswith(f"{number}_") and f"loss={loss}" in job.name and f"optimizer.lr={lr}" in job.name
        assert (job / "checkpoints" / "last.pt").is_file() and (job / "checkpoints" / "best.pt").is_file()
        assert [json.loads(line)["step"] for line in (job / "metrics.jsonl").read_text().splitlines()] == [2, 4]
        config = OmegaConf.load(job / ".hydra" / "config.yaml")
        assert (config.loss.name, config.optimizer.lr) == (loss, float(lr))


def test_the_report_ranks_jobs_by_their_best_metric(sweep):
    result = run_cli("gan-report", str(sweep), cwd=sweep.parent)
    assert result.returncode == 0, result.stderr
    rows = report_rows(sweep)
    jobs = jobs_of(sweep)
    expected = sorted(range(4), key=lambda n: (best_fid(jobs[n]), n))  # FID: lower is better
    assert [int(row["job"]) for row in rows] == expected
    assert [int(row["rank"]) for row in rows] == [1, 2, 3, 4]
    for row in rows:
        job = jobs[int(row["job"])]
        assert float(row["best fid"]) == pytest.approx(best_fid(job))
        assert row["status"] == "finished" and row["step"] == "4"
        assert (row["loss"], row["optimizer.lr"]) == (job.name.split("loss=")[1].split(",")[0], job.name.split("lr=")[1].split(",")[0])
    markdown = (sweep / "report.md").read_text()
    assert "ranked by the best fid (lower is better)" in markdown
    assert len(re.findall(r"^\| \d \| \d \| ", markdown, re.MULTILINE)) == 4
    assert markdown in result.stdout
    with Image.open(sweep / "report.png") as plot:
        assert plot.format == "PNG" and plot.width > 400


def test_the_report_ranks_by_a_training_loss_from_tensorboard(sweep, tmp_path):
    report.main([str(sweep), "--metric", "loss/D", "--by", "final", "--out", str(tmp_path / "losses")])
    with open(tmp_path / "losses.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    finals = [float(row["final loss/D"]) for row in rows]
    assert len(rows) == 4 and finals == sorted(finals)
    for row in rows:  # the values are the jobs' own: their last log line says the same, rounded
        log = (jobs_of(sweep)[int(row["job"])] / "train.log").read_text()
        assert f"loss_D {float(row['final loss/D']):.3f}" in re.findall(r"step 4/4 .*", log)[0]


def test_each_job_logs_its_hyperparameters_with_its_final_metrics(sweep):
    job = jobs_of(sweep)[2]  # loss=lsgan optimizer.lr=1e-4
    events = EventAccumulator(str(job / "tb"))
    events.Reload()
    start = plugin_data_pb2.HParamsPluginData.FromString(events.PluginTagToContent("hparams")["_hparams_/session_start_info"])
    hparams = start.session_start_info.hparams
    assert hparams["loss"].string_value == "lsgan" and hparams["loss.name"].string_value == "lsgan"
    assert hparams["optimizer.lr"].number_value == pytest.approx(1e-4)
    assert hparams["train.batch_size"].number_value == 16
    assert events.Scalars("best/fid")[-1].value == pytest.approx(best_fid(job))
    assert {"final/fid", "final/loss/D", "final/loss/G"} <= set(events.Tags()["scalars"])


def test_a_job_resumes_from_its_sweep_folder_as_named(sweep, tmp_path):
    job = shutil.copytree(jobs_of(sweep)[3], tmp_path / jobs_of(sweep)[3].name)  # holds `=` and `,`
    result = run_cli("gan-train", f"resume={job}", "train.steps=6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resuming at step 4" in result.stdout
    assert torch.load(job / "checkpoints" / "last.pt", weights_only=True)["step"] == 6
    assert len(list((job / ".hydra").glob("resume_*"))) == 1


def test_finished_jobs_rank_first_and_a_refused_resume_changes_no_status(sweep, tmp_path):
    copy = tmp_path / "sweep"
    shutil.copytree(sweep, copy, ignore=shutil.ignore_patterns("report.*"))
    jobs = jobs_of(copy)
    by_fid = sorted(range(4), key=lambda n: (best_fid(jobs[n]), n))
    best, second = jobs[by_fid[0]], jobs[by_fid[1]]
    refused = run_cli("gan-train", f"resume={second}", "model.g_width=16", cwd=tmp_path)
    assert_user_error(refused, "model.g_width: 8 -> 16")
    # The best job resumed for longer and stopped by SIGTERM: incomplete, its best FID still the best.
    stopped = TrainProcess(f"resume={best}", "train.steps=1000", cwd=tmp_path)
    stopped.wait_for_line("step ")
    stopped.process.send_signal(signal.SIGTERM)
    assert stopped.finish() == 128 + signal.SIGTERM
    report.main([str(copy)])
    rows = report_rows(copy)
    assert [int(row["job"]) for row in rows] == [*by_fid[1:], by_fid[0]]
    assert [row["status"] for row in rows] == ["finished"] * 3 + ["incomplete"]
    report.main([str(copy / second.name)])  # one job
    assert "\n1 job, ranked by the best fid (lower is better).\n" in (copy / second.name / "report.md").read_text()


def test_a_failing_job_fails_alone_and_the_sweep_reports_it(tmp_path):
    result = run_cli("gan-train", "-m", *FAST, "train.steps=4", "optimizer.lr=1e30,2e-4", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert re.search(r"gan-train: job 0 \(.*0_debug=smoke.*optimizer.lr=1e\+30[^)]*\) failed: training diverged at step 1", result.stderr)
    failed, ran = jobs_of(tmp_path / "sweep")
    assert "gan-train: error: training diverged at step 1" in (failed / "train.log").read_text()
    assert not (failed / "checkpoints").exists() and (ran / "checkpoints" / "last.pt").is_file()  # the next job still ran
    report.main([str(tmp_path / "sweep")])
    rows = report_rows(tmp_path / "sweep")  # ranked by loss/G: there were no evaluations
    assert [row["job"] for row in rows] == ["1", "0"]
    assert rows[0]["status"] == "finished" and rows[1]["status"].startswith("failed: training diverged at step 1")


def test_the_report_refuses_a_folder_without_jobs(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit:
        report.main([str(tmp_path)])
    assert exit.value.code == 1
    assert f"gan-report: error: {tmp_path} holds no job folders" in capsys.readouterr().err


@pytest.mark.parametrize(
    "overrides",
    [
        "loss=hinge,optimizer.lr=0.0002",
        "dataset.root=/data/a b,seed=1",
        "model.g_hidden=[32,32],name='x*y?'",
        "a=../..",
        "a=" + "x" * 300,
    ],
)
def test_job_folder_names_are_single_valid_names(overrides, tmp_path):
    name = job_dir_name(7, overrides)
    assert name.startswith("7_") and "/" not in name and len(name.encode()) <= MAX_JOB_DIR
    (tmp_path / name).mkdir()
    assert [p.name for p in tmp_path.iterdir()] == [name]


def test_job_folder_names_keep_overrides_readable_and_apart():
    assert job_dir_name(3, "loss=hinge,optimizer.lr=0.0002") == "3_loss=hinge,optimizer.lr=0.0002"
    assert job_dir_name(0, "") == "0"
    assert job_dir_name(1, "dataset.root=/a/b") == "1_dataset.root=%2Fa%2Fb"
    names = {job_dir_name(1, o) for o in ("a=x/y", "a=x%2Fy", "a=x_y", "a=" + "x" * 300, "a=" + "x" * 299 + "y")}
    assert len(names) == 5


def test_paths_that_hydra_would_misread_are_quoted():
    job = "multirun/2026-11-22/10-00-00/3_loss=hinge,optimizer.lr=0.0002"
    assert quote_path(f"resume={job}", ("resume",)) == f"resume='{job}'"
    assert quote_path("resume=outputs/2026-11-22/10-00-00", ("resume",)) == "resume=outputs/2026-11-22/10-00-00"
    assert quote_path(f"model.name={job}", ("resume",)) == f"model.name={job}"


def test_a_missing_plugin_names_the_extra_to_install(monkeypatch):
    monkeypatch.setattr("gan_cli.cli.find_spec", lambda name: None)
    with pytest.raises(GanError, match=r"hparams_search=mnist_lr needs Hydra's hydra_optuna_sweeper plugin.*\.\[optuna\]"):
        check_plugins(["hparams_search=mnist_lr"])
    with pytest.raises(GanError, match=r"\.\[slurm\]"):
        check_plugins(["hydra/launcher=submitit_local"])
    check_plugins(["loss=hinge", "launcher"])  # nothing to check


@pytest.mark.slow
def test_a_restarted_job_continues_its_own_run(tmp_path):
    """As SLURM requeues a job: the same command, in the same folder, with SLURM_RESTART_COUNT set. (The
    same command without it is refused: test_cli.test_a_new_run_never_touches_an_existing_one.)"""
    run_dir = tmp_path / "run"
    first = run_cli("gan-train", *FAST, "train.steps=4", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    requeued = run_cli("gan-train", *FAST, "train.steps=8", f"hydra.run.dir={run_dir}", cwd=tmp_path, env={"SLURM_RESTART_COUNT": "1"})
    assert requeued.returncode == 0, requeued.stderr
    assert "Continuing this run from its checkpoints/last.pt: restarted by the scheduler (SLURM_RESTART_COUNT=1)" in requeued.stdout
    assert "resuming at step 4" in requeued.stdout
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == 8


needs_optuna = pytest.mark.skipif(find_spec("hydra_plugins.hydra_optuna_sweeper") is None, reason="the optuna extra is not installed")
needs_submitit = pytest.mark.skipif(find_spec("hydra_plugins.hydra_submitit_launcher") is None, reason="the slurm extra is not installed")
needs_joblib = pytest.mark.skipif(find_spec("hydra_plugins.hydra_joblib_launcher") is None, reason="the joblib extra is not installed")


@pytest.mark.slow
@needs_optuna
@pytest.mark.filterwarnings("ignore:Deprecated API features detected")  # optuna 2 on SQLAlchemy 1.4, as pinned
def test_an_optuna_search_records_failed_trials_and_completes(tmp_path, mnist_root):
    """hparams_search=mnist_lr, shrunk to 3 trials of 4 steps on synthetic data; the learning rate is
    drawn from {1e-4, 1e30}: with the sampler's seed 3, trials 0 and 1 draw 1e30 and diverge."""
    import optuna  # the optuna extra

    result = run_cli(
        "gan-train", "hparams_search=mnist_lr", *EVALUATED, "hydra.sweeper.n_trials=3", "hydra.sweeper.sampler.seed=3",
        "optimizer.lr=choice(1e-4,1e30)", "hydra.sweep.dir=search", "hydra.sweeper.storage=sqlite:///study.db", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="mnist_lr", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [trial.state.name for trial in study.trials] == ["FAIL", "FAIL", "COMPLETE"]
    jobs = jobs_of(tmp_path / "search")
    assert len(jobs) == 3
    diverged = [job for job in jobs if "optimizer.lr=1e+30" in job.name]
    assert [job.name[0] for job in diverged] == ["0", "1"]
    for job in diverged:
        assert "training diverged" in (job / "train.log").read_text()
        assert f"Trial {job.name[0]} failed, the study goes on" in result.stdout
    results = OmegaConf.load(tmp_path / "search" / "optimization_results.yaml")
    assert (results.completed_trials, results.failed_trials) == (1, 2)
    assert results.best_params["optimizer.lr"] == 1e-4 and results.best_value == pytest.approx(best_fid(jobs[2]))


@needs_optuna
def test_an_optuna_search_without_evaluations_is_refused(tmp_path):
    result = run_cli("gan-train", "hparams_search=mnist_lr", *FAST, "eval.every=null", cwd=tmp_path, timeout=60)
    assert_user_error(result, "an Optuna search optimises the value of eval.best, and these runs are not evaluated")
    assert list(tmp_path.iterdir()) == []


@needs_submitit
def test_the_slurm_preset_composes_a_submitit_slurm_launcher_with_one_task_per_gpu():
    from hydra import compose, initialize_config_module

    with initialize_config_module(version_base="1.3", config_module="gan_cli.configs"):
        cfg = compose("train", ["launcher=slurm", "hydra.launcher.gpus_per_node=4", "hydra.launcher.nodes=2"], return_hydra_config=True)
    launcher = cfg.hydra.launcher
    assert launcher._target_ == "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
    assert cfg.hydra.mode.name == "MULTIRUN"  # no -m needed
    assert (launcher.gpus_per_node, launcher.tasks_per_node, launcher.nodes) == (4, 4, 2)  # one DDP process per GPU
    assert (launcher.timeout_min, launcher.max_num_timeout) == (240, 3)  # requeued up to 3 times at the time limit
    assert "launcher" in cfg.hydra.job.config.override_dirname.exclude_keys  # not in job folder names
    check_train_config(cfg)


@pytest.mark.slow
@needs_submitit
def test_the_submitit_local_launcher_runs_a_sweep(tmp_path):
    result = run_cli(
        "gan-train", "-m", "hydra/launcher=submitit_local", *FAST, "train.steps=4", "seed=1,2", "hydra.sweep.dir=sweep",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Submitit 'local' sweep output dir" in result.stdout
    jobs = jobs_of(tmp_path / "sweep")
    assert [job.name.split("seed=")[1].split(",")[0] for job in jobs] == ["1", "2"]
    for job in jobs:
        assert torch.load(job / "checkpoints" / "last.pt", weights_only=True)["step"] == 4
        assert list(job.glob("tb/events.out.tfevents.*"))


@needs_submitit
@pytest.mark.slow
def test_a_submitit_job_of_two_tasks_trains_with_ddp(tmp_path):
    """As launcher=slurm with gpus_per_node=2 does: one job, two tasks, one DDP run in one folder."""
    result = run_cli(
        "gan-train", "-m", "hydra/launcher=submitit_local", "hydra.launcher.tasks_per_node=2", *FAST, "train.steps=4",
        "hydra.sweep.dir=sweep", cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (job,) = jobs_of(tmp_path / "sweep")
    log = (job / "train.log").read_text()
    assert "2 processes (gloo), each training on 8 of every batch of 16" in log and log.count("Finished 4 steps") == 1
    assert torch.load(job / "checkpoints" / "last.pt", weights_only=True)["step"] == 4


@needs_joblib
@pytest.mark.slow
def test_the_joblib_launcher_runs_jobs_side_by_side(tmp_path):
    result = run_cli("gan-train", "launcher=joblib", *FAST, "train.steps=4", "seed=1,2", "hydra.sweep.dir=sweep", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Joblib.Parallel(n_jobs=2" in result.stdout
    assert [(job / "checkpoints" / "last.pt").is_file() for job in jobs_of(tmp_path / "sweep")] == [True, True]


@pytest.mark.slow
def test_the_example_sweep_script_runs_with_a_small_budget(tmp_path, mnist_root):
    script = Path(__file__).parents[1] / "scripts" / "sweep_loss_lr.sh"
    env = {"STEPS": "4", "EVAL_N": "10", "SWEEP": "sweep", "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run([str(script), "log.progress_bar=false"], cwd=tmp_path, capture_output=True, text=True, env={**os.environ, **env})
    assert result.returncode == 0, result.stderr
    rows = report_rows(tmp_path / "sweep")
    assert len(rows) == 6 and {row["loss"] for row in rows} == {"nonsaturating", "lsgan", "hinge"}
    assert all(row["status"] == "finished" and row["best fid"] for row in rows)


def test_with_several_gpus_each_job_of_a_sweep_gets_its_own(monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    assert [job_device("auto", n) for n in range(6)] == ["cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1"]
    assert job_device("cpu", 5) == "cpu" and job_device("cuda:2", 5) == "cuda:2"  # a choice stays
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert job_device("auto", 5) == "auto"


# --- a killed sweep, resumed whole ---------------------------------------------------------------

KILLED_SWEEP = [*FAST, "train.channels_last=false", "train.steps=4", "checkpoint.every=2", "seed=1,2,3,4", "hydra.sweep.dir=sweep"]


def files_of(folder: Path) -> dict[str, tuple[str, int]]:
    """Every file of a job's run (not Hydra's records, nor its log) with its content digest and mtime."""
    return {
        str(p.relative_to(folder)): (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and ".hydra" not in p.parts and p.name != "train.log"
    }


@pytest.fixture(scope="module")
def killed_sweep(tmp_path_factory) -> Path:
    """Four jobs of 4 steps, SIGKILLed right after job 1 wrote its checkpoint of step 2 (the sweep's
    third last.pt): job 0 finished, job 1 half done, jobs 2 and 3 never started."""
    cwd = tmp_path_factory.mktemp("killed_sweep")
    killed = run_forked("-m", *KILLED_SWEEP, cwd=cwd, env={FAULT_VARIABLE: "checkpoints/last.pt#3 after-rename"})
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    return cwd / "sweep"


def test_a_killed_sweep_resumes_whole_and_leaves_finished_jobs_alone(killed_sweep, tmp_path):
    sweep = shutil.copytree(killed_sweep, tmp_path / "sweep", copy_function=shutil.copy2)
    finished, halfway = jobs_of(sweep)
    assert torch.load(halfway / "checkpoints" / "last.pt", weights_only=True)["step"] == 2
    before = files_of(finished)

    resumed = run_forked("-m", f"resume={sweep}", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    jobs = jobs_of(sweep)
    assert [job.name for job in jobs[:2]] == [finished.name, halfway.name] and len(jobs) == 4
    assert files_of(finished) == before  # not one file of the finished run touched
    assert "Finished 4 steps before this resume: left as it is" in (finished / "train.log").read_text()
    assert "resuming at step 2" in (halfway / "train.log").read_text()
    for job in jobs[2:]:  # started from nothing, named as the first command would have named them
        number = job.name.split("_")[0]
        settings = f"debug=smoke,model.d_width=8,model.g_width=8,seed={int(number) + 1},train.channels_last=False,train.steps=4"
        assert job.name == f"{number}_checkpoint.every=2,{settings}"
        assert "Training: 4 steps of batch 16, k=1; starting" in (job / "train.log").read_text()
        assert (job / ".hydra" / "overrides.yaml").is_file()
    for job in jobs:
        assert torch.load(job / "checkpoints" / "last.pt", weights_only=True)["step"] == 4
    assert [OmegaConf.load(job / ".hydra" / "config.yaml").seed for job in jobs] == [1, 2, 3, 4]

    report.main([str(sweep)])
    assert [row["status"] for row in report_rows(sweep)] == ["finished"] * 4

    again = run_forked("-m", f"resume={sweep}", cwd=tmp_path)  # nothing left to do
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("left as it is") == 4


def test_a_resumed_job_ends_where_it_would_have_ended_uninterrupted(killed_sweep, tmp_path):
    sweep = shutil.copytree(killed_sweep, tmp_path / "sweep")
    assert run_forked("-m", f"resume={sweep}", cwd=tmp_path).returncode == 0
    halfway = jobs_of(sweep)[1]
    straight = run_forked(*KILLED_SWEEP[:-2], "seed=2", f"hydra.run.dir={tmp_path / 'straight'}", cwd=tmp_path)
    assert straight.returncode == 0, straight.stderr
    a = torch.load(halfway / "checkpoints" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "straight" / "checkpoints" / "last.pt", weights_only=True)
    for name, value in b["networks"]["G"].items():
        assert torch.equal(a["networks"]["G"][name], value), name


def test_a_resumed_sweep_takes_new_budgets_but_no_new_jobs(killed_sweep, tmp_path):
    sweep = shutil.copytree(killed_sweep, tmp_path / "sweep")
    refused = run_forked("-m", f"resume={sweep}", "seed=5,6", cwd=tmp_path)
    assert_user_error(refused, "seed=5,6: a resumed sweep runs the jobs it had, and a sweep of seed would make other ones")
    longer = run_forked("-m", f"resume={sweep}", "train.steps=6", cwd=tmp_path)
    assert longer.returncode == 0, longer.stderr
    jobs = jobs_of(sweep)
    assert len(jobs) == 4 and "train.steps=6" not in jobs[0].name  # the finished jobs too train on, in their folders
    assert [torch.load(job / "checkpoints" / "last.pt", weights_only=True)["step"] for job in jobs] == [6] * 4


def test_an_optuna_search_is_not_resumed_as_a_sweep(tmp_path):
    sweep = tmp_path / "search"
    sweep.mkdir()
    OmegaConf.save({"hydra": {"overrides": {"task": ["hparams_search=mnist_lr"], "hydra": []},
                              "sweeper": {"_target_": "hydra_plugins.gan_cli_optuna.tolerant_sweeper.TolerantOptunaSweeper"}}},
                   sweep / "multirun.yaml")  # fmt: skip
    result = run_forked("-m", f"resume={sweep}", cwd=tmp_path)
    assert_user_error(result, f"{sweep} is an Optuna search, whose trials are drawn anew on every run")
