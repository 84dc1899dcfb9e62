"""`gan-train -m resume=multirun/<date>/<time>`: a killed or stopped sweep, continued whole.

A sweep folder holds Hydra's record of the command that ran it (`multirun.yaml`). Resuming the sweep
runs that command again into the same folder: `sweep_command` goes in front of the new command line,
so that the same jobs come out with the same numbers and folders (`job_folder`). Each job then finds
its folder as the sweep left it, and gan-train (gan_cli.cli.train) acts on it:

- finished (its train.log says so, and the command asks for no more steps): left as it is;
- a checkpoints/last.pt of an unfinished run (killed, stopped, failed): continued from it, like a job
  started again (gan_cli.cli.run_dir.restarted_run);
- no checkpoint, or no folder (the sweep never got to it): run from the start.

The new command line may add overrides that every job may change on resume (`train.steps=5000` to
train all of them longer), but no sweep of its own: that would make other jobs. An Optuna search
draws its trials anew each time, so it is continued through its study storage instead.
"""

from pathlib import Path

from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf

from gan_cli.cli import quote_path
from gan_cli.errors import GanError

RECORD = "multirun.yaml"  # what Hydra's launchers write into a sweep's folder
# Hydra settings of the first command that a resumed sweep sets anew: its folder is this one.
NOT_REPLAYED = ("hydra.sweep.dir", "hydra.mode")


def is_sweep_folder(path: str | Path | None) -> bool:
    return path is not None and (Path(path).expanduser() / RECORD).is_file()


def sweep_command(sweep: Path, new_args: list[str]) -> list[str]:
    """The arguments that run the sweep in `sweep` again into that folder, to put in front of `new_args`."""
    try:
        record = OmegaConf.load(sweep / RECORD)
        task, hydra = (list(record.hydra.overrides[kind]) for kind in ("task", "hydra"))
        sweeper = str(record.hydra.sweeper._target_)
    except Exception as err:  # a damaged or foreign record: YAML errors, missing keys, wrong types
        raise GanError(f"{sweep / RECORD} is not a readable record of a sweep ({' '.join(str(err).split())})") from None
    if "optuna" in sweeper.lower():
        raise GanError(
            f"{sweep} is an Optuna search, whose trials are drawn anew on every run: continue it through its study "
            "storage (the same command with hydra.sweeper.storage=sqlite:///<file>), or resume its jobs one by one"
        )
    _refuse_new_sweeps(new_args)
    replayed = [o for o in task if not o.startswith("resume=")]
    replayed += [o for o in hydra if o.lstrip("+~").split("=", 1)[0] not in NOT_REPLAYED]
    return ["-m", *replayed, quote_path(f"hydra.sweep.dir={sweep}", ("hydra.sweep.dir",))]


def _refuse_new_sweeps(args: list[str]) -> None:
    parser = OverridesParser.create()
    for arg in args:
        try:
            override = parser.parse_override(arg)
        except HydraException:
            continue  # not an override (a flag such as -m), or a malformed one that Hydra reports itself
        if override.is_sweep_override() and not arg.startswith("resume="):
            raise GanError(
                f"{arg}: a resumed sweep runs the jobs it had, and a sweep of {override.key_or_group} would make other "
                "ones; resume with single values, or start a new sweep for them"
            )


def job_folder(sweep: Path, number: int) -> str | None:
    """The name of job `number`'s folder in `sweep`, when the sweep made one."""
    names = [p.name for p in sweep.iterdir() if p.is_dir() and p.name.split("_", 1)[0] == str(number)]
    return names[0] if len(names) == 1 else None


def finished(run_dir: Path, checkpoint: dict, cfg: DictConfig) -> bool:
    """Whether the job in `run_dir` ended its run (its train.log says so) and `cfg` asks for no more steps."""
    from gan_cli.sweeps.jobs import log_status  # here: it imports TensorBoard's reader, which training never uses

    stored = checkpoint["config"].get("train", {})
    same_budget = (stored.get("steps"), stored.get("epochs")) == (cfg.train.steps, cfg.train.epochs)
    return same_budget and log_status(run_dir / "train.log") == "finished"
