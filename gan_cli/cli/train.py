"""gan-train: compose the training config with Hydra and hand it to the training loop."""

import logging
from contextlib import nullcontext
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli import chosen_group, console_script, quote_path
from gan_cli.cli.jobs import in_sweep, job_device, job_errors, register_optuna_sweeper
from gan_cli.cli.run_dir import register_resolvers, removed_if_nothing_trained, restarted_run
from gan_cli.files import remove_interrupted_writes
from gan_cli.sweeps.resume import finished, is_sweep_folder, sweep_command
from gan_cli.training import distributed
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import training_loop
from gan_cli.training.resume import resumed_config, stored_overrides
from gan_cli.validation import check_train_config

log = logging.getLogger("gan_cli.train")
register_resolvers()
register_optuna_sweeper()
# Groups that only say how a sweep ran its jobs; a resume is one run (and hparams_search would make it a sweep).
SWEEP_GROUPS = ("launcher", "hparams_search")


def resumed_choices(args: list[str]) -> list[str]:
    """The config-group choices (dataset=image_folder, experiment=...) of the run that `resume=` in
    `args` continues, to go in front of the command line: Hydra then composes it against that run's
    groups, so that keys only they have (an image folder's dataset.path) may be given on resume
    without repeating its choices. For a sweep's folder, the command line of that sweep (-m and all),
    which runs its jobs again (gan_cli.sweeps.resume). Nothing for a command without `resume=`."""
    given = [arg for arg in args if arg.startswith("resume=")]
    try:
        resume = OverridesParser.create().parse_override(quote_path(given[-1], ("resume",))).value() if given else None
    except HydraException:
        return []  # a malformed override: Hydra reports it well itself
    if resume is None:
        return []
    if is_sweep_folder(resume):
        return sweep_command(Path(resume).expanduser(), args)
    choices = [o for o in stored_overrides(load_checkpoint(resume)) if chosen_group(o) not in (None, *SWEEP_GROUPS)]
    return [choice for choice in choices if choice not in args]


@console_script("gan-train", path_keys=("resume",), distributed=True, leading_args=resumed_choices)
@hydra.main(version_base="1.3", config_path="pkg://gan_cli.configs", config_name="train")
def main(cfg: DictConfig) -> float | None:
    """Returns the best value of eval.best (for sweepers), or None when the run was not evaluated."""
    with job_errors("gan-train"), distributed.process_group():  # the group of a SLURM job's tasks
        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        parallel = distributed.current()
        if not parallel.is_main:
            _leave_logs_to_rank_0()
        overrides = list(hydra_cfg.overrides.task)
        # gan-train -m resume=<sweep folder>: each job continues from its own folder, as it finds it.
        resumed_sweep = in_sweep() and is_sweep_folder(cfg.resume)
        if resumed_sweep:
            cfg.resume, overrides = None, [o for o in overrides if not o.startswith("resume=")]
        resume, restart = cfg.resume, restarted_run(run_dir, sweep_job=in_sweep())
        if resume is None and restart:
            resume = str(run_dir)
        checkpoint = None
        if resume is not None:
            # Checked before this attempt logs its first line: a refused resume leaves the run's
            # train.log as it was, and with it the status gan-report reads there.
            checkpoint = load_checkpoint(resume)
            cfg, overrides = resumed_config(checkpoint, overrides)
            check_train_config(cfg)
            if resumed_sweep and finished(run_dir, checkpoint, cfg):  # one line, which gan-report reads as "finished"
                log.info(f"Finished {checkpoint['step']} steps before this resume: left as it is. Run directory: {run_dir}")
                return (checkpoint.get("evaluation") or {}).get("best")
        if parallel.is_main:
            log.info(f"Run directory: {run_dir}")
            if restart:
                log.info(f"Continuing this run from its checkpoints/last.pt: {restart}")
            for leftover in remove_interrupted_writes(run_dir):
                log.info(f"Removed {leftover.relative_to(run_dir)}, the partial file of a write that was interrupted")
        if in_sweep() and not parallel.distributed:
            cfg.device = job_device(cfg.device, hydra_cfg.job.num)
        with removed_if_nothing_trained(run_dir) if parallel.is_main else nullcontext():
            return training_loop(cfg, run_dir, {"overrides": overrides}, checkpoint)


def _leave_logs_to_rank_0() -> None:
    """Processes other than rank 0 of a distributed run write no train.log and show only warnings."""
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, logging.FileHandler)]:
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.WARNING)


if __name__ == "__main__":
    main()
