"""TensorBoard's HPARAMS tab: a finished run logs its hyper-parameters with its final metrics.

Opened on a sweep (`tensorboard --logdir multirun/<date>/<time>`), the tab shows one row per job: the
keys the jobs were given on the command line and the usual suspects (model, loss, learning rates,
batch size, k, seed), beside `final/<scalar>` (the last logged mean of each training scalar, and the
last evaluation's values) and `best/<eval.best>`. It is written into the run's own tb/ folder.
"""

from omegaconf import DictConfig, OmegaConf

from gan_cli.training.evaluation import PeriodicEvaluation
from gan_cli.training.monitor import TrainingMonitor

# Logged for every run, whether or not the command line set them.
ALWAYS = (
    "model.name",
    "loss.name",
    "optimizer.generator.lr",
    "optimizer.discriminator.lr",
    "train.batch_size",
    "train.d_steps",
    "seed",
)


def hyperparameters(cfg: DictConfig, overrides: list[str]) -> dict[str, float | int | str | bool]:
    """{key: value} for the ALWAYS keys and each overridden key; a config group chosen on the command
    line (`loss=hinge`) is logged by its option name, a list as its text."""
    values = {key: OmegaConf.select(cfg, key) for key in ALWAYS}
    for override in overrides:
        key, _, text = override.lstrip("+~").partition("=")
        value = OmegaConf.select(cfg, key, default=None)
        values[key] = text if OmegaConf.is_dict(value) or value is None else value
    return {key: str(list(value)) if OmegaConf.is_list(value) else value for key, value in values.items()}


def log_hparams(monitor: TrainingMonitor, cfg: DictConfig, overrides: list[str], evaluation: PeriodicEvaluation) -> None:
    metrics = {f"final/{name}": value for name, value in {**monitor.last_means, **evaluation.last}.items()}
    if evaluation.best is not None:
        metrics[f"best/{evaluation.best_name}"] = evaluation.best
    monitor.writer.add_hparams(hyperparameters(cfg, overrides), metrics, run_name=".", global_step=monitor.total_steps)
