"""gan-train and gan-sample as a user runs them: subprocesses, files, exit codes and messages."""

import hashlib
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.distributed import START_TIME_VARIABLE
from tests.disk_data import write_idx_dataset, write_image_folder
from tests.forked import run_forked
from tests.helpers import FAST, assert_user_error, run_cli, run_clis


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory) -> Path:
    """A finished gan-train run started from an empty working directory."""
    cwd = tmp_path_factory.mktemp("cwd")
    result = run_cli("gan-train", *FAST, cwd=cwd)
    assert result.returncode == 0, result.stderr
    run_dirs = list((cwd / "outputs").glob("*/*"))
    assert len(run_dirs) == 1 and [p.name for p in cwd.iterdir()] == ["outputs"]  # nothing else in cwd
    run_dir = run_dirs[0]
    assert result.stdout.count(f"Run directory: {run_dir}") == 2  # printed at the start and at the end
    return run_dir


def test_train_writes_a_complete_run_directory(cli_run):
    for name in (".hydra/config.yaml", ".hydra/overrides.yaml", "train.log", "checkpoints/last.pt"):
        assert (cli_run / name).is_file(), name
    assert list((cli_run / "tb").glob("events.out.tfevents.*"))
    assert sorted(p.name for p in (cli_run / "samples").iterdir()) == ["step_0000010.png", "step_0000020.png"]
    log = (cli_run / "train.log").read_text()
    assert "step 20/20" in log and "img/s" in log and "eta" in log


def test_sample_grid_png_of_expected_size(cli_run, tmp_path):
    result = run_cli("gan-sample", f"ckpt={cli_run}", "n=16", "nrow=4", "out=grid.png", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "grid.png").size == (2 + 4 * 30, 2 + 4 * 30)
    assert "Wrote 16 images (grid) to grid.png" in result.stdout


def test_sample_npz_and_image_files_are_reproducible(cli_run, tmp_path):
    ckpt = cli_run / "checkpoints" / "last.pt"
    for seed, out in ((0, "a.npz"), (0, "b.npz"), (1, "c.npz")):
        assert run_cli("gan-sample", f"ckpt={ckpt}", "n=10", f"seed={seed}", f"out={out}", cwd=tmp_path).returncode == 0
    a, b, c = (np.load(tmp_path / name)["images"] for name in ("a.npz", "b.npz", "c.npz"))
    assert a.shape == (10, 28, 28, 1) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    result = run_cli("gan-sample", f"ckpt={ckpt}", "n=5", "out=pngs", "ema=false", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    files = sorted((tmp_path / "pngs").glob("*.png"))
    assert len(files) == 5 and Image.open(files[0]).size == (28, 28)
    assert "raw generator" in result.stdout


@pytest.mark.parametrize(
    "args,message",
    [
        (["model=dcgann"], "Could not find 'model/dcgann'; Available options in 'model': ae, began, cgan, cgan_mlp, cogan, cyclegan, dcgan, infogan, mlp, stargan, vae, vaegan"),
        (["optimizer.lr=abc"], "optimizer.lr=abc; Value 'abc' of type 'str' could not be converted to Float"),
        (["train.batch_sise=3"], "Could not override 'train.batch_sise'; Key 'batch_sise' not in 'TrainLoopConfig'"),
        (["+train.batchsize=3"], "+train.batchsize=3: train.batchsize is not a key of this command"),
        (["train.batch_size=0"], "train.batch_size=0 must be positive"),
        (["dataset.root=/nonexistent/data", "dataset.download=false"], "/nonexistent/data/MNIST/raw does not hold"),
        (["resume=/nonexistent/run"], "checkpoint not found: /nonexistent/run"),
        (["device=cuda:99"], "device=cuda:99 but "),  # no CUDA here, or fewer than 100 GPUs
    ],
)
def test_train_bad_input_gives_one_message_and_nonzero_exit(tmp_path, args, message):
    result = run_forked(*args, cwd=tmp_path)  # gan-train from its command line on (tests/forked.py)
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()  # one line, Hydra's own errors included
    assert line.startswith("gan-train: error: ")


def test_bad_input_leaves_no_run_directory(tmp_path):
    for args in (["model=dcgann"], ["train.batch_size=0"], ["resume=/nonexistent/run"], ["device=cuda:99"]):
        assert run_forked(*args, cwd=tmp_path).returncode == 1
    assert list(tmp_path.iterdir()) == []


def test_commands_import_no_library_that_only_some_runs_use():
    """A misspelled override is reported once torch and Hydra have loaded: no command imports
    torchvision (1.5 s here, since it loads torch's compiler), the compiler, scipy or scikit-learn before it uses them."""
    deferred = ["torchvision", "torch._dynamo", "scipy", "sklearn"]
    commands = ", ".join(f"gan_cli.cli.{name}" for name in ("train", "sample", "evaluate", "report"))
    code = f"import sys, {commands}; print(*[name for name in {deferred!r} if name in sys.modules])"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == []


def test_broken_data_files_are_refused_before_the_run_directory_exists(tmp_path):
    """Checked from headers and names alone, before anything is created: MNIST copies cut short or
    with the wrong magic number, and an image folder without images."""
    images = "MNIST/raw/train-images-idx3-ubyte"
    for root in ("cut", "magic"):
        write_idx_dataset(tmp_path / root, "MNIST")
    data = (tmp_path / "cut" / images).read_bytes()
    (tmp_path / "cut" / images).write_bytes(data[:1000])
    (tmp_path / "magic" / images).write_bytes(b"\x1f\x8b" + data[2:])  # a gzip file's magic number
    (tmp_path / "empty" / "cats").mkdir(parents=True)
    (tmp_path / "empty" / "cats" / "notes.txt").write_text("no image here")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    commands = [("gan-train", f"dataset.root={tmp_path / root}") for root in ("cut", "magic")]
    commands.append(("gan-train", "dataset=image_folder", f"dataset.path={tmp_path / 'empty'}"))
    cut, magic, empty = run_clis(commands, cwd=cwd)
    assert_user_error(cut, f"dataset.root={tmp_path / 'cut'}: {tmp_path / 'cut' / images}: the header promises shape (40, 28, 28) "
                      "(31376 bytes) but the file has 1000 bytes")  # fmt: skip
    assert_user_error(magic, f"{tmp_path / 'magic' / images} is not an IDX file")
    assert_user_error(empty, f"dataset.path={tmp_path / 'empty'}: {tmp_path / 'empty'} holds no image files")
    assert list(cwd.iterdir()) == []


def snapshot(folder: Path) -> dict[Path, tuple[str, int]]:
    """Every file under `folder` with its content digest and modification time."""
    return {p: (digest(p), p.stat().st_mtime_ns) for p in sorted(folder.rglob("*")) if p.is_file()}


def test_a_new_run_never_touches_an_existing_one(cli_run, tmp_path):
    before = snapshot(cli_run)
    result = run_cli("gan-train", *FAST, f"hydra.run.dir={cli_run}", cwd=tmp_path)
    assert result.returncode == 1 and "already holds a run's checkpoints" in result.stderr
    assert f"resume={cli_run}" in result.stderr
    assert snapshot(cli_run) == before


def test_a_new_sweep_never_touches_an_existing_one(cli_run, tmp_path):
    sweep = tmp_path / "sweep"
    shutil.copytree(cli_run, sweep / "0")  # a sweep folder whose job 0 holds a run
    before = snapshot(sweep)
    result = run_cli("gan-train", "-m", *FAST, "seed=1,2", f"hydra.sweep.dir={sweep}", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert f"{sweep} already holds a run's checkpoints; continue that run with resume={sweep / '0'}" in result.stderr
    assert snapshot(sweep) == before and list(tmp_path.iterdir()) == [sweep]


@pytest.mark.slow
def test_runs_and_sweeps_started_in_the_same_second_get_folders_of_their_own(tmp_path):
    """Two runs and two sweeps given one start time (the variable through which torchrun's processes
    share theirs): each command writes into a folder of its own, the second `<time>_2`."""
    same_second = {START_TIME_VARIABLE: repr(time.time())}
    commands = [("gan-train", *FAST, "train.steps=2", f"seed={seed}") for seed in (1, 2)]
    commands += [("gan-train", "-m", *FAST, "train.steps=2", f"seed={seed}") for seed in (3, 4)]
    results = run_clis(commands, cwd=tmp_path, env=same_second)
    for result in results:
        assert result.returncode == 0, result.stderr
    runs = sorted((tmp_path / "outputs").glob("*/*"))
    sweeps = sorted((tmp_path / "multirun").glob("*/*"))
    for folders in (runs, sweeps):
        assert [folder.name for folder in folders] == [folders[0].name, f"{folders[0].name}_2"]
    jobs = [next(sweep.glob("0_*")) for sweep in sweeps]
    for folders, seeds in ((runs, {1, 2}), (jobs, {3, 4})):
        assert {load_checkpoint(folder)["config"]["seed"] for folder in folders} == seeds  # each its own run
        for folder in folders:
            seed = load_checkpoint(folder)["config"]["seed"]
            assert (folder / "train.log").read_text().count("Finished 2 steps") == 1
            assert f"Run directory: {folder}" in results[seed - 1].stdout


def test_resume_continues_in_the_same_directory(tmp_path):
    run_dir = tmp_path / "run"
    assert run_cli("gan-train", *FAST, f"hydra.run.dir={run_dir}", cwd=tmp_path).returncode == 0
    first_config = (run_dir / ".hydra" / "config.yaml").read_text()
    last = digest(run_dir / "checkpoints" / "last.pt")

    refused = run_cli("gan-train", f"resume={run_dir}", "model.g_width=16", cwd=tmp_path)
    assert refused.returncode == 1 and "model.g_width: 8 -> 16" in refused.stderr
    assert digest(run_dir / "checkpoints" / "last.pt") == last

    result = run_cli("gan-train", f"resume={run_dir}", "train.steps=30", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "resuming at step 20" in result.stdout and "train.steps: 20 -> 30" in result.stdout
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == 30
    assert (run_dir / "samples" / "step_0000030.png").is_file()
    assert (run_dir / ".hydra" / "config.yaml").read_text() == first_config  # the first invocation's record stays
    assert len(list((run_dir / ".hydra").glob("resume_*/overrides.yaml"))) == 2  # one per resume attempt


def test_resume_of_an_image_folder_run_takes_its_dataset_keys(tmp_path):
    """dataset.path and dataset.workers exist only in dataset=image_folder, which the resume command
    does not repeat: gan-train composes it against the resumed run's own groups."""
    folder = write_image_folder(tmp_path / "pets")
    data = ["dataset=image_folder", f"dataset.path={folder}", "dataset.image_size=16", "dataset.workers=0"]
    run_dir = tmp_path / "run"
    first = run_cli("gan-train", *FAST, *data, "train.batch_size=4", "train.steps=4", f"hydra.run.dir={run_dir}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    moved = shutil.move(folder, tmp_path / "moved")
    result = run_cli("gan-train", f"resume={run_dir}", f"dataset.path={moved}", "dataset.workers=1", "train.steps=6", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"Resume changes dataset.path: {folder} -> {moved}" in result.stdout and "resuming at step 4" in result.stdout
    assert f"Decoded 8 of 9 images of {moved}" in result.stdout
    assert torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["step"] == 6


# Downloads in tests go nowhere: through a proxy on a closed port, refused at once.
NO_NETWORK = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9", "no_proxy": ""}


def test_a_run_that_fails_before_its_first_step_leaves_no_run_directory(tmp_path):
    """MNIST is missing and its download fails: the run stops while building its data, after Hydra
    made the run directory; that directory (and outputs/, made for it) is removed."""
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    result = run_forked(f"dataset.root={tmp_path / 'data'}", "train.steps=2", "log.progress_bar=false", cwd=cwd, env=NO_NETWORK)
    assert_user_error(result, f"MNIST not found: the download failed, and {tmp_path / 'data' / 'MNIST' / 'raw'} does not hold")
    (made,) = re.findall(r"Run directory: (\S+)", result.stdout)
    assert f"Removed {made}: the run failed before training wrote anything there" in result.stdout
    assert list(cwd.iterdir()) == []


def test_a_run_that_fails_after_it_began_keeps_its_run_directory(tmp_path):
    result = run_forked(*FAST, "optimizer.lr=1e30", cwd=tmp_path)  # non-finite at the first steps
    assert_user_error(result, "training diverged at step")
    (run_dir,) = (tmp_path / "outputs").glob("*/*")
    assert (run_dir / "tb").is_dir() and "Training: 20 steps" in (run_dir / "train.log").read_text()


def test_a_named_run_directory_that_existed_is_never_removed(tmp_path):
    (tmp_path / "mine").mkdir()
    result = run_forked(f"dataset.root={tmp_path / 'data'}", f"hydra.run.dir={tmp_path / 'mine'}", cwd=tmp_path, env=NO_NETWORK)
    assert_user_error(result, "MNIST not found: the download failed")
    assert sorted(p.name for p in (tmp_path / "mine").iterdir()) == [".hydra", "train.log"]
