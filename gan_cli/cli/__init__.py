"""Thin @hydra.main entry points: compose the config, check it, hand over. No training logic here."""

import functools
import sys
from contextlib import contextmanager, nullcontext
from importlib import resources
from importlib.util import find_spec
from typing import Callable

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

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
    `leading_args(args)`: arguments to put in front of the command line (which then wins over them)."""

    def wrap(hydra_main):
        @functools.wraps(hydra_main)
        def main() -> None:
            with user_errors(prog):
                args = [*leading_args(sys.argv[1:]), *sys.argv[1:]] if leading_args else sys.argv[1:]
                check_group_choices(args)
                check_plugins(args)
            sys.argv[1:] = [quote_path(arg, path_keys) for arg in args]
            with process_group(agree_start_time=True) if distributed else nullcontext():
                hydra_main()

        return main

    return wrap


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
    """An option name, a list of them (groups that take several), or nothing after `~group`."""
    if is_delete:
        return value is None or isinstance(value, str)
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))
