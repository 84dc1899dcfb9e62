"""Checkpoints are untrusted input: every kind of bad file has its own message, and nothing a file
names is ever run (each forged file here would create a marker file if anything executed it)."""

import os
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from gan_cli.errors import GanError
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.training.checkpoint import load_checkpoint
from tests.helpers import compose_train, resume_tiny, run_cli, run_clis


class RunsAShellCommand:
    """Unpickling this object runs `touch <marker>`: what a malicious pickle does."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def bad_checkpoint(kind: str, good: Path, path: Path) -> None:
    """Write a bad checkpoint of `kind` at `path`, made from the good checkpoint file `good`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "truncated":
        data = good.read_bytes()
        path.write_bytes(data[: len(data) // 2])
    elif kind == "not a checkpoint":
        path.write_text("step,loss\n1,0.69\n")
    elif kind == "damaged":
        data = bytearray(good.read_bytes())
        data[len(data) // 3 : len(data) // 3 + 4096] = bytes(4096)  # zeros over stored data, directory intact
        path.write_bytes(bytes(data))
    elif kind == "not gan_cli":
        torch.save({"weights": torch.zeros(3)}, path)
    elif kind == "code":
        torch.save({"payload": RunsAShellCommand(path.with_name("marker"))}, path)
    elif kind == "newer version":
        checkpoint = torch.load(good, weights_only=True)
        torch.save({**checkpoint, "format_version": 3}, path)


MESSAGES = {
    "truncated": "is truncated: it starts like a checkpoint but its end is missing",
    "not a checkpoint": "is not a checkpoint file: it is not a PyTorch archive",
    "damaged": "is a damaged PyTorch archive",
    "not gan_cli": "is a PyTorch file but not a gan_cli checkpoint",
    "code": "holds Python objects other than tensors and plain values",
    "newer version": "has checkpoint format version 3, newer than this gan_cli understands (2); upgrade gan_cli",
}


@pytest.mark.parametrize("kind", MESSAGES)
def test_each_kind_of_bad_file_has_its_own_message(tiny_run, tmp_path, kind):
    path = tmp_path / "model.pt"
    bad_checkpoint(kind, tiny_run / "checkpoints" / "last.pt", path)
    with pytest.raises(GanError) as err:
        load_checkpoint(path)
    assert MESSAGES[kind] in str(err.value)
    assert [other for other, message in MESSAGES.items() if message in str(err.value)] == [kind]
    assert not (tmp_path / "marker").exists()


@pytest.mark.parametrize("kind", ["truncated", "not a checkpoint", "newer version"])
def test_both_commands_refuse_a_bad_checkpoint_in_one_line(tiny_run, tmp_path, kind):
    path = tmp_path / "run" / "checkpoints" / "last.pt"
    bad_checkpoint(kind, tiny_run / "checkpoints" / "last.pt", path)
    commands = [("gan-sample", f"ckpt={tmp_path / 'run'}"), ("gan-train", f"resume={tmp_path / 'run'}")]
    for (command, _), result in zip(commands, run_clis(commands, cwd=tmp_path)):
        assert result.returncode == 1
        [line] = result.stderr.strip().splitlines()  # one line, no traceback
        assert line.startswith(f"{command}: error: {path} {MESSAGES[kind]}")


def forge(run_dir: Path, good: Path, *, config=None, overrides=None, model=None) -> None:
    """A checkpoint in run_dir made from `good`, with its stored config, command line or model config replaced."""
    checkpoint = torch.load(good, weights_only=True)
    if overrides is not None:
        checkpoint["origin"] = {"overrides": overrides}
        # The forger makes the stored config match what the command line composes, so that the
        # resume's comparison of the two passes and only the protections tested here are left.
        config = OmegaConf.to_container(compose_train(overrides), resolve=True)
    if config is not None:
        checkpoint["config"] = config
    if model is not None:
        checkpoint["config"]["model"] = {**checkpoint["config"]["model"], **model}
    (run_dir / "checkpoints").mkdir(parents=True)
    torch.save(checkpoint, run_dir / "checkpoints" / "last.pt")


def test_gan_sample_builds_only_registry_models_whatever_target_the_file_names(tiny_run, tmp_path):
    marker = tmp_path / "marker"
    forge(tmp_path / "run", tiny_run / "checkpoints" / "last.pt", model={"_target_": "os.system", "_args_": [f"touch {marker}"]})
    result = run_cli("gan-sample", f"ckpt={tmp_path / 'run'}", "out=grid.png", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "refusing the checkpoint: its model config sets model._target_, which gan_cli never writes" in result.stderr
    assert not marker.exists() and not (tmp_path / "grid.png").exists()
    checkpoint = load_checkpoint(tiny_run)
    checkpoint["config"]["model"]["arch"] = "os.system"  # a name outside the registry
    with pytest.raises(GanError, match="model.arch='os.system' is not a known architecture"):
        sampler_from_checkpoint(checkpoint)


def test_weights_that_do_not_fit_the_stored_config_are_refused_in_one_line(tiny_run, tmp_path):
    """A config edited after training (g_width 8 -> 16): the first tensor that differs, with both shapes."""
    forge(tmp_path / "run", tiny_run / "checkpoints" / "last.pt", model={"g_width": 16})
    first, weights = next(iter(load_checkpoint(tiny_run)["ema"]["G"].items()))
    assert weights.shape[1] == 16  # g_width 8: the first layer has 2 * 8 output channels
    wider = (weights.shape[0], 32, *weights.shape[2:])
    commands = [("gan-sample", f"ckpt={tmp_path / 'run'}", "out=grid.png"), ("gan-eval", f"ckpt={tmp_path / 'run'}", "n=10")]
    for (command, *_), result in zip(commands, run_clis(commands, cwd=tmp_path)):
        assert result.returncode == 1
        [line] = result.stderr.strip().splitlines()
        assert line == (
            f"{command}: error: the checkpoint's stored config and its weights disagree: {first} has shape "
            f"{tuple(weights.shape)} in the weights but {wider} in the model its config describes; the file was "
            "altered, or its config and weights come from different runs"
        )
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # no grid, no metrics file


def test_resume_refuses_an_optimizer_target_in_the_stored_config(tiny_run, tmp_path):
    config = load_checkpoint(tiny_run)["config"]
    config["optimizer"]["generator"]["_target_"] = "os.system"
    forge(tmp_path, tiny_run / "checkpoints" / "last.pt", config=config)
    with pytest.raises(GanError, match=r"optimizer\.generator\._target_: os\.system -> torch\.optim\.Adam"):
        resume_tiny(tmp_path)


@pytest.mark.parametrize(
    "override,message",
    [
        ("optimizer.generator._target_=os.system", "optimizer.generator._target_='os.system' is not an optimizer of torch.optim"),
        ("+optimizer.generator.betas_from={_target_:builtins.open,_args_:['MARKER',w]}",
         "optimizer.generator.betas_from._target_: only the optimizer itself may be named by a _target_"),
        ("+hydra.callbacks.evil._target_=os.system", "holds +hydra.callbacks.evil._target_=os.system, which gan-train never stores"),
        ("hydra.searchpath=[file://MARKER]", "which gan-train never stores"),
    ],
)
def test_resume_runs_nothing_a_forged_command_line_names(tiny_run, tmp_path, override, message):
    marker = tmp_path / "marker"
    forged = override.replace("MARKER", str(marker))
    stored = load_checkpoint(tiny_run)["origin"]["overrides"]
    if forged.startswith("hydra") or forged.startswith("+hydra"):
        forge(tmp_path / "run", tiny_run / "checkpoints" / "last.pt", overrides=stored)
        checkpoint_file = tmp_path / "run" / "checkpoints" / "last.pt"
        checkpoint = torch.load(checkpoint_file, weights_only=True)
        checkpoint["origin"]["overrides"].append(forged)
        torch.save(checkpoint, checkpoint_file)
    else:
        forge(tmp_path / "run", tiny_run / "checkpoints" / "last.pt", overrides=[*stored, forged])
    with pytest.raises(GanError) as err:
        resume_tiny(tmp_path / "run")
    assert message in str(err.value)
    assert not marker.exists()


def test_gan_train_resume_of_a_forged_command_line_runs_nothing(tiny_run, tmp_path):
    marker = tmp_path / "marker"
    forged = f"+optimizer.discriminator.extra={{_target_:builtins.open,_args_:['{marker}',w]}}"
    stored = load_checkpoint(tiny_run)["origin"]["overrides"]
    forge(tmp_path / "run", tiny_run / "checkpoints" / "last.pt", overrides=[*stored, forged])
    last = (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes()
    result = run_cli("gan-train", f"resume={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "optimizer.discriminator.extra._target_: only the optimizer itself may be named by a _target_" in result.stderr
    assert not marker.exists()
    assert (tmp_path / "run" / "checkpoints" / "last.pt").read_bytes() == last
    assert not (tmp_path / "run" / "samples").exists()  # refused before training
