"""Test helpers: composing configs with Hydra's Compose API, tiny training runs, CLI subprocesses."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_module
from omegaconf import DictConfig
from torch import nn
from torchvision.models import inception_v3

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli.run_dir import register_resolvers
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import training_loop
from gan_cli.training.resume import resumed_config

register_resolvers()

# A run small enough for unit tests: synthetic 28x28 data, a handful of steps (networks: tiny_model).
TINY = [
    "dataset=fake",
    "dataset.num_samples=64",
    "train.batch_size=8",
    "train.steps=6",
    "log.every=2",
    "samples.every=3",
    "samples.n=4",
    "checkpoint.every=3",
    "log.progress_bar=false",
]


# The same kind of run for gan-train subprocesses: 20 steps on synthetic data (debug=smoke), narrow networks.
FAST = ["debug=smoke", "model.g_width=8", "model.d_width=8", "log.progress_bar=false"]


def compose_train(overrides: list[str] = (), config_name: str = "train") -> DictConfig:
    """The config gan-train (or, with config_name="sample", gan-sample) would get for `overrides`."""
    with initialize_config_module(version_base="1.3", config_module="gan_cli.configs"):
        return compose(config_name=config_name, overrides=list(overrides))


MLP_OPTIONS = ("mlp", "cgan_mlp")  # model options with fully-connected networks


def tiny_model(option: str = "dcgan") -> list[str]:
    """Overrides selecting the model option `option`, shrunk to test size."""
    if option in MLP_OPTIONS:
        return [f"model={option}", "model.g_hidden=[32]", "model.d_hidden=[16]"]
    return [f"model={option}", "model.g_width=8", "model.d_width=8"]


def train_tiny(
    run_dir: Path, overrides: list[str] = (), checkpoint: dict | None = None, model: str = "dcgan"
) -> float | None:
    """Train in-process on the TINY config with a tiny `model` (plus `overrides`) into run_dir;
    returns training_loop's value."""
    overrides = TINY + tiny_model(model) + list(overrides)
    return training_loop(compose_train(overrides), run_dir, {"overrides": overrides}, checkpoint)


def train_checked(run_dir: Path, overrides: list[str]) -> None:
    """Train in-process as gan-train would on `overrides`: the config checked first (validation)."""
    from gan_cli.validation import check_train_config

    cfg = compose_train(overrides)
    check_train_config(cfg)
    training_loop(cfg, run_dir, {"overrides": list(overrides)})


def assert_same_training(a: dict, b: dict) -> None:
    """Two checkpoints hold the same step, and bit for bit the same weights and EMA weights."""
    assert a["step"] == b["step"]
    for kind in ("networks", "ema"):
        assert a[kind].keys() == b[kind].keys()
        for name, weights in a[kind].items():
            for key, tensor in weights.items():
                assert torch.equal(tensor, b[kind][name][key]), (kind, name, key)


def resume_tiny(run_dir: Path, new_overrides: list[str] = ()) -> None:
    """Resume the run in run_dir in-process, as `gan-train resume=<run_dir> <new_overrides>` does."""
    checkpoint = load_checkpoint(run_dir)
    with initialize_config_module(version_base="1.3", config_module="gan_cli.configs"):
        cfg, overrides = resumed_config(checkpoint, list(new_overrides))
        training_loop(cfg, run_dir, {"overrides": overrides}, checkpoint)


def assert_same_training_state(a: dict, b: dict) -> None:
    """Two checkpoints (format 2) hold the same training state, bit for bit: every network and EMA
    copy, every optimizer state, the game's own state, the data order and the random streams."""
    assert a["step"] == b["step"]
    for key in ("networks", "ema"):
        assert a[key].keys() == b[key].keys(), key
        for network, weights in a[key].items():
            for name, value in weights.items():
                assert torch.equal(value, b[key][network][name]), f"{key}.{network}.{name}"
    for optimizer, state in a["optimizers"].items():
        for index, values in state["state"].items():
            for name, value in values.items():
                assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizers"][optimizer]["state"][index][name])), f"{optimizer}[{index}].{name}"
    assert_same_tree(a["game"], b["game"], "game")
    assert torch.equal(a["data"]["order"], b["data"]["order"]) and a["data"]["position"] == b["data"]["position"]
    assert torch.equal(a["rng"], b["rng"])
    assert_same_tree(a["fixed_inputs"], b["fixed_inputs"], "fixed_inputs")


def assert_same_tree(a, b, where: str) -> None:
    """Nested dicts, lists and tuples of tensors and plain values are equal, tensors bit for bit."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same_tree(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b)):
            assert_same_tree(x, y, f"{where}[{index}]")
    elif isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and torch.equal(a, b), where
    else:
        assert a == b, where


def run_cli(command: str, *args: str, cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run a console script (gan-train, gan-sample) as a user would; returns the CompletedProcess."""
    return run_clis([(command, *args)], cwd=cwd, timeout=timeout, env=env)[0]


def run_clis(commands: list[tuple[str, ...]], cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run several console scripts side by side (their start-up dominates short tests); returns
    their CompletedProcesses in order."""
    processes = [
        subprocess.Popen(
            [str(Path(sys.executable).with_name(command)), *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        for command, *args in commands
    ]
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return results


def gan_train_path() -> str:
    return str(Path(sys.executable).with_name("gan-train"))


def run_torchrun(processes: int, *args: str, cwd: Path, timeout: float = 300, env: dict | None = None):
    """`torchrun --standalone --nproc_per_node=<processes> gan-train <args>`: DDP on one machine, as a user starts it."""
    return run_cli(
        "torchrun", "--standalone", f"--nproc_per_node={processes}", gan_train_path(), *args, cwd=cwd, timeout=timeout, env=env
    )


class TrainProcess:
    """A gan-train subprocess for tests that interrupt it: its output lines are collected as they come."""

    def __init__(self, *args: str, cwd: Path, env: dict | None = None):
        executable = Path(sys.executable).with_name("gan-train")
        self.process = subprocess.Popen(
            [str(executable), *args],
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._readers = [
            threading.Thread(target=lambda pipe=pipe, lines=lines: lines.extend(pipe), daemon=True)
            for pipe, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))
        ]
        for reader in self._readers:
            reader.start()

    def wait_until(self, condition, what: str, timeout: float = 180) -> None:
        """Poll `condition()` until it holds; fail if the process ends first or time runs out."""
        deadline = time.monotonic() + timeout
        while not condition():
            if self.process.poll() is not None:
                raise AssertionError(f"gan-train ended (status {self.process.returncode}) before {what}:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}:\n{self.output()}")
            time.sleep(0.002)

    def wait_for_line(self, prefix: str) -> None:
        self.wait_until(lambda: any(line.startswith(prefix) for line in list(self.stdout)), f"a line {prefix!r}")

    def wait_for_file(self, folder: Path, pattern: str) -> Path:
        self.wait_until(lambda: any(folder.glob(pattern)), f"a file {folder / pattern}")
        return next(folder.glob(pattern))

    def finish(self, timeout: float = 300) -> int:
        """Wait for the process to end; returns its exit status, with all its output collected."""
        self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=10)
        return self.process.returncode

    def output(self) -> str:
        return "".join(self.stdout) + "".join(self.stderr)


def assert_user_error(result: subprocess.CompletedProcess, message: str) -> None:
    """A command refused its input the way users should see it: exit 1, `message` on stderr, no traceback."""
    assert result.returncode == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def save_random_inception(path: Path) -> Path:
    """Save a random inception_v3 state_dict (what features=inception reads; its numbers mean nothing)
    whose batch-norm statistics come from random images, so that its features are of order 1 (with
    the initial statistics they are about 1e-7)."""
    torch.manual_seed(0)
    model = inception_v3(weights=None, aux_logits=True, init_weights=False)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = None  # a cumulative average: one batch sets the statistics
    aux, model.AuxLogits = model.AuxLogits, None  # the auxiliary head needs 299x299 inputs; it is never used
    with torch.no_grad():
        model.train()(torch.rand(16, 3, 75, 75))
    model.AuxLogits = aux
    torch.save(model.state_dict(), path)
    return path
