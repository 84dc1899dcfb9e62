"""Thin @hydra.main entry points: compose the config, check it, hand over. No training logic here."""

import functools
import sys
from contextlib import contextmanager
from importlib import resources

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException

from gan_cli.errors import GanError, StoppedBySignal


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


def console_script(prog: str):
    """Wrap a @hydra.main function as the console script `prog`: check what Hydra cannot report cleanly
    before handing the command line to Hydra."""

    def wrap(hydra_main):
        @functools.wraps(hydra_main)
        def main() -> None:
            with user_errors(prog):
                check_group_choices(sys.argv[1:])
            hydra_main()

        return main

    return wrap


def check_group_choices(args: list[str]) -> None:
    """Refuse a config group given something other than an option name, such as `model=0` or
    `dataset=null`: Hydra 1.3 crashes on those with a traceback instead of a message."""
    configs = resources.files("gan_cli.configs")
    groups = {folder.name: folder for folder in configs.iterdir() if folder.is_dir() and not folder.name.startswith("_")}
    parser = OverridesParser.create()
    for arg in args:
        group = arg.split("=", 1)[0].lstrip("~+")
        if "=" not in arg or group not in groups:
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
