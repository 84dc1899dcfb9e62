"""Thin @hydra.main entry points: compose the config, check it, hand over. No training logic here."""

import functools
import os
import sys
from contextlib import contextmanager, nullcontext
from importlib import resources
from importlib.util import find_spec
from typing import Callable
from unittest import mock

import hydra._internal.utils as hydra_utils
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf.errors import OmegaConfBaseException

from gan_cli.errors import GanError, StoppedBySignal
from gan_cli.training.distributed import process_group


@contextmanager
def user_errors(prog: str):
    """Turn a GanError into one line on stderr and exit status 1; a signal stop into its own status."""
    try:
        yield
    except GanError as err:
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
    except StoppedBySignal as stop:
        print(f"{prog}: {stop}", file=sys.stderr)
        raise SystemExit(stop.exit_code) from None


# A choice on the command line -> (the Hydra plugin it needs, the extra of gan-cli that installs it).
PLUGINS = {
    "hparams_search": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "hydra/sweeper=optuna": ("hydra_plugins.hydra_optuna_sweeper", "optuna"),
    "launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "hydra/launcher=joblib": ("hydra_plugins.hydra_joblib_launcher", "joblib"),
    "launcher=slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
    "hydra/launcher=submitit_local": ("hydra_plugins.hydra_submitit_launcher", "slurm"),
}


def console_script(
    prog: str,
    path_keys: tuple[str, ...] = (),
    distributed: bool = False,
    leading_args: Callable[[list[str]], list[str]] | None = None,
):
    """Wrap a @hydra.main function as the console script `prog`: check what Hydra cannot report cleanly
    and quote the paths given to `path_keys` before handing the command line to Hydra. `distributed`:
    under torchrun, join the process group first, so that all processes agree on the run directory.
    `leading_args(args)`: arguments to put in front of the command line's overrides (which then win over them)."""

    def wrap(hydra_main):
        @functools.wraps(hydra_main)
        def main() -> None:
            with user_errors(prog):
                check_new_keys(sys.argv[1:])
                args = in_front_of_overrides(sys.argv[1:], leading_args(sys.argv[1:]) if leading_args else [])
                check_group_choices(args)
                check_plugins(args)
            sys.argv[1:] = [quote_path(arg, path_keys) for arg in args]
            with process_group(agree_start_time=True) if distributed else nullcontext(), composition_errors(prog):
                hydra_main()

        return main

    return wrap


def in_front_of_overrides(args: list[str], leading: list[str]) -> list[str]:
    """`leading` put before the first override of `args`, after the options in front of it (`-m`,
    `--cfg job`): Hydra's argument parser takes no option once its overrides have begun."""
    first = next((i for i, arg in enumerate(args) if not arg.startswith("-") and ("=" in arg or arg.startswith("~"))), len(args))
    return [*args[:first], *leading, *args[first:]]


def check_new_keys(args: list[str]) -> None:
    """Refuse `+key=value` for gan_cli's own keys: no code reads a key the configs do not define, so an
    added key is a misspelling that would otherwise be stored silently (`+train.batchsize=3`)."""
    for arg in args:
        if arg.startswith("+") and not arg.startswith("++") and not arg.lstrip("+").startswith("hydra"):
            key = arg.lstrip("+").split("=", 1)[0]
            raise GanError(f"{arg}: {key} is not a key of this command (nothing reads added keys); check its spelling "
                           "against the composed config, which --cfg job prints")


@contextmanager
def composition_errors(prog: str):
    """Hydra's own errors (a misspelled option or key, a value of the wrong type, an ambiguous sweep) as
    one line `<prog>: error: ...` instead of Hydra's multi-line block. HYDRA_FULL_ERROR=1 keeps Hydra's."""
    report = hydra_utils.run_and_report

    def run_and_report(func):
        def in_one_line():
            try:
                return func()
            except (HydraException, OmegaConfBaseException) as err:
                if os.environ.get("HYDRA_FULL_ERROR") == "1":
                    raise
                print(f"{prog}: error: {one_line(err)}", file=sys.stderr)
                raise SystemExit(1) from None

        return report(in_one_line)  # anything else: Hydra's own report

    with mock.patch.object(hydra_utils, "run_and_report", run_and_report):
        yield


# Lines of Hydra's and OmegaConf's messages that say nothing to a gan_cli user.
NOISE = ("full_key:", "reference_type=", "object_type=", "Config search path", "provider=", "To append to your config")


def one_line(err: Exception) -> str:
    """An error's message, with its OmegaConf cause, on one line: `Available options in 'model':` and its
    tab-indented list become `available options in 'model': cgan, dcgan, ...`."""
    text = str(err)
    if isinstance(err.__cause__, OmegaConfBaseException) and str(err.__cause__) not in text:
        text += "\n" + str(err.__cause__)
    parts: list[str] = []
    for line in text.splitlines():
        item = line.strip()
        if not item or item.startswith(NOISE):
            continue
        if line.startswith("\t") and parts and parts[-1].endswith(":"):  # the first of a list of options
            parts[-1] += " " + item
        elif line.startswith("\t") and parts:
            parts[-1] += ", " + item
        else:
            parts.append(item.rstrip("."))
    return "; ".join(parts)


def check_plugins(args: list[str]) -> None:
    """Refuse a choice whose Hydra plugin is not installed, naming the extra that installs it."""
    for arg in args:
        choice = arg.lstrip("+~")
        plugin, extra = PLUGINS.get(choice) or PLUGINS.get(choice.split("=", 1)[0]) or (None, None)
        if plugin and find_spec(plugin) is None:
            raise GanError(
                f"{arg} needs Hydra's {plugin.split('.')[-1]} plugin, which is not installed: pip install "
                f"'gan-cli[{extra}]' (from a checkout: pip install -e '.[{extra}]')"
            )


def quote_path(arg: str, path_keys: tuple[str, ...]) -> str:
    """`key=path` for a path key, with the path quoted when Hydra's override grammar would read it as
    something else: a sweep job's folder such as multirun/.../3_loss=hinge,optimizer.lr=2e-4 holds
    `=` and `,`. Anything else is left as it is."""
    key, _, value = arg.partition("=")
    if key not in path_keys or not value or "'" in value:
        return arg
    parser = OverridesParser.create()
    for candidate in (arg, f"{key}='{value}'"):
        try:
            override = parser.parse_override(candidate)
        except HydraException:
            continue
        if not override.is_sweep_override() and override.value() == value:
            return candidate
    return arg


@functools.cache
def config_groups() -> dict:
    """{name: folder} of the shipped config groups (dataset, model, loss, experiment, ...)."""
    configs = resources.files("gan_cli.configs")
    return {folder.name: folder for folder in configs.iterdir() if folder.is_dir() and not folder.name.startswith("_")}


def chosen_group(arg: str) -> str | None:
    """The config group that the override `arg` chooses an option of (`dataset=image_folder` ->
    dataset), or None for an override of a key."""
    group = arg.split("=", 1)[0].lstrip("~+")
    return group if "=" in arg and group in config_groups() else None


def check_group_choices(args: list[str]) -> None:
    """Refuse a config group given something other than an option name, such as `model=0` or
    `dataset=null`: Hydra 1.3 crashes on those with a traceback instead of a message."""
    groups = config_groups()
    parser = OverridesParser.create()
    for arg in args:
        group = chosen_group(arg)
        if group is None:
            continue
        try:
            override = parser.parse_override(arg)
        except HydraException:
            continue  # a malformed override: Hydra reports it well itself
        values = list(override.sweep_iterator()) if override.is_sweep_override() else [override.value()]
        if not all(_names_options(value, override.is_delete()) for value in values):
            options = sorted(f.name.removesuffix(".yaml") for f in groups[group].iterdir() if f.name.endswith(".yaml"))
            raise GanError(f"{arg}: the config group {group} takes the name of one of its options ({', '.join(options)})")


def _names_options(value, is_delete: bool) -> bool:
    """An option name, a list of them (groups that take several; not none: `loss=[]` would leave the
    group without its settings), or nothing after `~group`."""
    if is_delete:
        return value is None or isinstance(value, str)
    return isinstance(value, str) or (isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value))
