"""hydra-optuna-sweeper's Optuna sweeper, with failed trials recorded as failed and the study going on.

The plugin (1.2, the release for Hydra 1.3) ends the whole study at the first trial that raises or
returns no number. A GAN trial failing is an ordinary outcome of a search (a learning rate that
diverges stops its run with a NaN), so here such a trial is told to Optuna as FAIL, with the reason
logged, and the next trials are asked for. Only a study in which no trial completed ends in an error.

Selected by the hparams_search presets (`hydra.sweeper._target_`, the class in
hydra_plugins/gan_cli_optuna, where Hydra looks for plugins); everything else (search space syntax,
samplers, storage, batches of n_jobs trials) is the plugin's.
"""

import functools
import logging
import math
import os

# Optuna 2's study storage (hydra.sweeper.storage) runs on SQLAlchemy 1.4 (pinned by the optuna extra),
# which would warn at every start that optuna is not ready for SQLAlchemy 2; its start-up log is chatter.
os.environ.setdefault("SQLALCHEMY_SILENCE_UBER_WARNING", "1")
logging.getLogger("alembic").setLevel(logging.WARNING)

import optuna  # noqa: E402
from hydra.errors import CompactHydraException
from hydra_plugins.hydra_optuna_sweeper._impl import OptunaSweeperImpl, create_params_from_overrides  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402
from optuna.trial import TrialState  # noqa: E402

log = logging.getLogger(__name__)


class StudyFailed(CompactHydraException):
    """Every trial failed: printed as one line by Hydra."""


class TolerantOptunaSweeperImpl(OptunaSweeperImpl):
    def sweep(self, arguments: list[str]) -> None:
        study, distributions, fixed = self._create_study(arguments)
        trials_left = self.n_trials
        while trials_left > 0:
            trials = [study.ask() for _ in range(min(self.n_jobs, trials_left))]
            jobs = self.launcher.launch(self._configure_trials(trials, distributions, fixed), initial_job_idx=self.job_idx)
            self.job_idx += len(jobs)
            for trial, job in zip(trials, jobs):
                value, failure = trial_value(job)
                if failure:
                    log.warning(f"Trial {trial.number} failed, the study goes on: {failure}")
                    study.tell(trial, state=TrialState.FAIL)
                else:
                    study.tell(trial, values=[value])
            trials_left -= len(trials)
        self._report(study)

    def _create_study(self, arguments: list[str]):
        """(study, search space, fixed parameters) from the preset's params and the command line."""
        self._process_searchspace_config()
        distributions, fixed = create_params_from_overrides(self._parse_sweeper_params_config() + list(arguments))
        for name in fixed:
            distributions.pop(name, None)
        directions = self._get_directions()
        if len(directions) != 1:
            raise StudyFailed(f"gan-train returns one value (eval.best); give one hydra.sweeper.direction, not {directions}")
        if isinstance(self.sampler, functools.partial) and self.sampler.func is optuna.samplers.GridSampler:
            grid = {name: self._to_grid_sampler_choices(d) for name, d in distributions.items()}
            self.sampler = self.sampler(grid)
            self.n_trials = min(self.n_trials, math.prod(len(values) for values in grid.values()))
        study = optuna.create_study(
            study_name=self.study_name,
            storage=self.storage,
            sampler=self.sampler,
            directions=directions,
            load_if_exists=True,
        )
        log.info(f"Study {study.study_name}: {self.n_trials} trials, {type(self.sampler).__name__}, {directions[0]}")
        return study, distributions, fixed

    def _report(self, study: optuna.Study) -> None:
        """Log and save (optimization_results.yaml in the sweep folder) the best trial."""
        completed = [t for t in study.trials if t.state == TrialState.COMPLETE]
        failed = sum(t.state == TrialState.FAIL for t in study.trials)
        if not completed:
            raise StudyFailed(f"all {failed} trials of study {study.study_name} failed; their train.log files say why")
        best = study.best_trial
        log.info(f"Best trial {best.number}: value {best.value}, parameters {best.params} ({failed} trial(s) failed)")
        results = {
            "name": "optuna",
            "best_params": best.params,
            "best_value": best.value,
            "completed_trials": len(completed),
            "failed_trials": failed,
        }
        OmegaConf.save(OmegaConf.create(results), f"{self.config.hydra.sweep.dir}/optimization_results.yaml")


def trial_value(job) -> tuple[float | None, str | None]:
    """(the value a job returned, None), or (None, why it cannot count) for a job that raised, was
    not evaluated (None), or returned a value that is not a finite number."""
    try:
        value = job.return_value  # raises what the job raised
    except Exception as err:  # noqa: BLE001  (any failure of a trial is that trial's)
        return None, str(err) or type(err).__name__
    if value is None:
        return None, "it returned no value: nothing was evaluated (eval.every, dataset=mnist or eval.required=true)"
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return None, f"it returned {value!r}, not a finite number"
    return float(value), None
