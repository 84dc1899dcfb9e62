"""Test helpers: composing configs with Hydra's Compose API, tiny training runs, CLI subprocesses."""

import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_module
from omegaconf import DictConfig

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli.run_dir import register_resolvers
from gan_cli.training.loop import training_loop

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


def run_cli(command: str, *args: str, cwd: Path, timeout: float = 300, env: dict | None = None):
    """Run a console script (gan-train, gan-sample) as a user would; returns the CompletedProcess."""
    executable = Path(sys.executable).with_name(command)
    return subprocess.run(
        [str(executable), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def assert_user_error(result: subprocess.CompletedProcess, message: str) -> None:
    """A command refused its input the way users should see it: exit 1, `message` on stderr, no traceback."""
    assert result.returncode == 1, result.stderr
    assert message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr
