"""Evaluations during training: every `eval.every` steps (and at the last step) the metric set of
the EMA generator (MNIST's metrics, or Stacked MNIST's modes) goes to TensorBoard (`eval/<value>`), to one line of <run dir>/metrics.jsonl, and,
when the value named by `eval.best` improves, the caller writes checkpoints/best.pt.

The best value and its step live in every checkpoint (see `state_dict`), so a resumed run keeps
comparing against them; metrics.jsonl lines written after the resumed checkpoint (by a run that was
killed before its next checkpoint) are dropped, since the resumed run writes them again.
"""

import json
import logging
import os
import time
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig

from gan_cli.data.domains import domain_test_set
from gan_cli.data.source import DataShape
from gan_cli.games.translation import TranslationGame, translate_images
from gan_cli.files import atomic_write
from gan_cli.metrics.evaluator import require_evaluator_shape
from gan_cli.metrics.choice import build_suite, metrics_image_shape
from gan_cli.metrics.domain_evaluator import load_domain_evaluator
from gan_cli.metrics.pairs import HIGHER_IS_BETTER as PAIR_HIGHER_IS_BETTER, evaluate_pairs, real_features
from gan_cli.metrics.suite import improves
from gan_cli.metrics.translation import HIGHER_IS_BETTER, evaluate_translation
from gan_cli.training.monitor import TrainingMonitor

log = logging.getLogger(__name__)


class PeriodicEvaluation:
    def __init__(
        self, cfg: DictConfig, shape: DataShape, run_dir: Path, device: torch.device, checkpoint: dict | None
    ):
        self.every = cfg.eval.every if self.applies(cfg, shape) else None
        self.best_name = self.value_name(cfg.eval.best)
        self.best: float | None = None
        self.best_step: int | None = None
        self.last: dict[str, float] = {}  # the values of this run's latest evaluation
        self.log_path = run_dir / "metrics.jsonl"
        if checkpoint is not None:
            self._resume(checkpoint)
        if self.every is not None:
            self.prepare(cfg, device)

    def applies(self, cfg: DictConfig, shape: DataShape) -> bool:
        return _applies(cfg, shape)

    def value_name(self, best: str) -> str:
        """The name of eval.best's value among the evaluation's values."""
        return best

    def improves(self, value: float) -> bool:
        """Whether `value` of eval.best beats the best so far."""
        return improves(self.best_name, value, self.best)

    def shown(self, values: dict[str, float]) -> dict[str, float]:
        """The values the log line shows."""
        return values

    def prepare(self, cfg: DictConfig, device: torch.device) -> None:
        """Build what the evaluations need (once per run)."""
        # The run's seed picks the evaluation latents: the same images at every evaluation.
        self.suite = build_suite(cfg.eval.metrics, cfg.eval.n, cfg.seed + 3, _data_root(cfg), device)
        # The accuracies' floor is the evaluator's own accuracy, not a generator's target: left out.
        accuracies = ("label_accuracy", "code_accuracy")
        floor = ", ".join(f"{name} {value:.4g}" for name, value in self.suite.floor.items() if name not in accuracies)
        log.info(
            f"Evaluation every {self.every} steps: {', '.join(cfg.eval.metrics)} of {cfg.eval.n} generated images; "
            f"best.pt by {self.best_name}; real-data floor {floor}"
        )

    def due(self, step: int, done: bool) -> bool:
        return self.every is not None and (step % self.every == 0 or done)

    def measure(self, state) -> tuple[dict[str, float], dict]:
        """The metric values of the TrainingState's EMA sampler, and what the metrics.jsonl line adds."""
        evaluation = self.suite.evaluate_generator(state.sampler)
        return evaluation.values, {"n": evaluation.n, "reference": evaluation.reference}

    def run(self, state, step: int, monitor: TrainingMonitor) -> bool:
        """Evaluate the TrainingState `state` at `step` and record the values; True when the best value improved."""
        started = time.perf_counter()
        values, about = self.measure(state)
        for name, value in values.items():
            monitor.add_scalar(f"eval/{name}", value, step)
        line = {"step": step, **values, **about}
        with open(self.log_path, "a") as f:
            f.write(json.dumps(line) + "\n")
        self.last = values
        value = values[self.best_name]
        improved = self.improves(value)
        if improved:
            self.best, self.best_step = value, step
        shown = "  ".join(f"{name} {value:.4g}" for name, value in self.shown(values).items())
        log.info(
            f"eval step {step}: {shown}  (best {self.best_name} {self.best:.4g} at step {self.best_step}; "
            f"{time.perf_counter() - started:.1f} s)"
        )
        return improved

    def state_dict(self) -> dict:
        return {"best_metric": self.best_name, "best": self.best, "best_step": self.best_step}

    def _resume(self, checkpoint: dict) -> None:
        state = checkpoint.get("evaluation") or {}
        if state.get("best_metric") == self.best_name:
            self.best, self.best_step = state["best"], state["best_step"]
        elif state.get("best") is not None:
            log.info(f"eval.best changed from {state['best_metric']} to {self.best_name}: best.pt is chosen anew")
        if self.log_path.is_file():
            _drop_lines_after(self.log_path, checkpoint["step"])


class TranslationEvaluation(PeriodicEvaluation):
    """The translation families: every translation metric of every ordered pair of domains
    (gan_cli.metrics.translation) on the first eval.n test images of each domain, by the EMA
    generators. eval.best names a metric (label_preservation, domain_accuracy, fid, ...): best.pt
    keeps its mean over the pairs. The log line shows the means; TensorBoard and metrics.jsonl all."""

    def applies(self, cfg: DictConfig, shape: DataShape) -> bool:
        return cfg.eval.every is not None

    def value_name(self, best: str) -> str:
        return f"mean/{best}"

    def prepare(self, cfg: DictConfig, device: torch.device) -> None:
        self.test_set = domain_test_set(cfg.dataset)
        self.n = min(cfg.eval.n, *(len(images) for images in self.test_set.images.values()))
        self.seed, self.device = cfg.seed + 3, device
        log.info(f"Evaluation every {self.every} steps: the translation metrics of every pair of "
                 f"{', '.join(self.test_set.domains)} on {self.n} test images each; best.pt by {self.best_name}")

    def improves(self, value: float) -> bool:
        higher = HIGHER_IS_BETTER[self.best_name.removeprefix("mean/")]
        return self.best is None or (value > self.best if higher else value < self.best)

    def shown(self, values: dict[str, float]) -> dict[str, float]:
        return {name: value for name, value in values.items() if name.startswith("mean/")}

    def measure(self, state) -> tuple[dict[str, float], dict]:
        networks, game = state.sampling_networks(), type(state.game)
        result = evaluate_translation(
            partial(translate_images, game, networks), self.test_set, self.n, device=self.device, seed=self.seed
        )
        for pair in result.hidden:
            log.warning(f"eval: {pair} hides information in its translations (the cycle probe: see gan-eval's report)")
        return result.values, {"n": self.n}


class PairEvaluation(PeriodicEvaluation):
    """The pair generators (model=cogan): the pair metrics (gan_cli.metrics.pairs) of eval.n pairs the
    EMA generator draws from fixed latents, against the domains' test images. eval.best names one of
    them (pair_agreement, pixel_agreement, pixel_l1, fid: the mean over the two domains)."""

    def applies(self, cfg: DictConfig, shape: DataShape) -> bool:
        return cfg.eval.every is not None

    def prepare(self, cfg: DictConfig, device: torch.device) -> None:
        self.test_set = domain_test_set(cfg.dataset)
        self.n, self.seed = cfg.eval.n, cfg.seed + 3
        self.evaluator = load_domain_evaluator(device)
        self.real = real_features(self.test_set, self.evaluator)  # FID's reference: the same at every evaluation
        log.info(f"Evaluation every {self.every} steps: the pair metrics of {self.n} pairs in "
                 f"{' / '.join(self.test_set.domains)}; best.pt by {self.best_name}")

    def improves(self, value: float) -> bool:
        higher = PAIR_HIGHER_IS_BETTER[self.best_name]
        return self.best is None or (value > self.best if higher else value < self.best)

    def shown(self, values: dict[str, float]) -> dict[str, float]:
        return {name: value for name, value in values.items() if name in PAIR_HIGHER_IS_BETTER}

    def measure(self, state) -> tuple[dict[str, float], dict]:
        return evaluate_pairs(state.sampler, self.test_set, self.n, self.seed, self.evaluator, self.real).values, {"n": self.n}


def evaluation_for(cfg: DictConfig, game, shape: DataShape, run_dir: Path, device: torch.device, checkpoint: dict | None):
    """The run's periodic evaluation: of the sampler's images, of a translation family's translations, or
    of a pair generator's pairs."""
    if isinstance(game, TranslationGame):
        kind = TranslationEvaluation
    else:
        kind = PairEvaluation if game.draws_pairs else PeriodicEvaluation
    return kind(cfg, shape, run_dir, device, checkpoint)


def evaluates(cfg: DictConfig) -> bool:
    """Whether a run of `cfg` is evaluated: eval.every is set, and the data is what eval.metrics are made
    for (MNIST, or Stacked MNIST for stacked_modes) or eval.required says to evaluate anyway."""
    return cfg.eval.every is not None and (cfg.dataset.name == _metrics_dataset(cfg) or cfg.eval.required)


def _metrics_dataset(cfg: DictConfig) -> str:
    return "stacked_mnist" if "stacked_modes" in cfg.eval.metrics else "mnist"


def _applies(cfg: DictConfig, shape: DataShape) -> bool:
    """Whether to evaluate (see `evaluates`); on data the metrics are not made for, eval.required needs
    images of the metrics' shape."""
    if evaluates(cfg):
        require_evaluator_shape(shape.sample_shape, f"dataset={cfg.dataset.name}", metrics_image_shape(cfg.eval.metrics))
        return True
    if cfg.eval.every is None:
        return False
    stacked = _metrics_dataset(cfg) == "stacked_mnist"
    advice = (
        "use eval.metrics=[stacked_modes] eval.best=modes_kl_uniform (as experiment=dcgan_stacked_mnist does)"
        if cfg.dataset.name == "stacked_mnist"
        else "set eval.required=true to evaluate 1x28x28 data anyway"
    )
    log.info(
        f"Evaluation skipped: eval.metrics={list(cfg.eval.metrics)} are made for "
        f"{'Stacked MNIST' if stacked else 'MNIST'}, and the data is dataset={cfg.dataset.name}; {advice}, "
        "or eval.every=null to silence this line"
    )
    return False


def _data_root(cfg: DictConfig) -> str:
    if cfg.eval.data_root is not None:
        return cfg.eval.data_root
    if cfg.dataset.name in ("mnist", "stacked_mnist"):  # both read MNIST's files from dataset.root
        return cfg.dataset.root
    return os.environ.get("GAN_DATA_ROOT", "./data")


def _drop_lines_after(path: Path, step: int) -> None:
    """Keep the lines of evaluations up to `step` (a line cut short by a kill goes too)."""
    lines = path.read_text().splitlines(keepends=True)
    kept = [line for line in lines if line.endswith("\n") and json.loads(line)["step"] <= step]
    if len(kept) < len(lines):
        log.info(f"Dropping {len(lines) - len(kept)} line(s) of {path.name} written after step {step}")
        atomic_write(path, lambda f: f.write("".join(kept).encode()))
