"""The training loop: the game's steps, until the step budget; everything around them is time.

A game (gan_cli.games) owns its networks, optimizers and step: for the GANs, Algorithm 1 of
Goodfellow et al. (2014), k discriminator updates then one generator update. The loop knows no
network by name: every step it asks the game for a step, updates the EMA of the game's `averaged`
networks, and at fixed intervals logs scalars, writes a sample grid of the fixed inputs, evaluates,
and writes a checkpoint that holds the whole TrainingState, so a resumed run continues bit for bit.
Under torchrun every process runs this loop on its share of each batch, and rank 0 alone writes
(gan_cli.training.distributed).
"""

import logging
from contextlib import nullcontext
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from tqdm.contrib.logging import logging_redirect_tqdm

from gan_cli import faults
from gan_cli.data import StreamedBatchSource, TensorBatchSource, build_batch_source
from gan_cli.device import autocast, keep_freed_host_memory, resolve_precision
from gan_cli.errors import GanError, StoppedBySignal
from gan_cli.games import build_game
from gan_cli.games.base import Game
from gan_cli.training import distributed
from gan_cli.training.checkpoint import FORMAT_VERSION, save_checkpoint
from gan_cli.training.compiled import CUDA_GRAPH_MODES, compile_networks
from gan_cli.training.divergence import DivergenceGuard
from gan_cli.training.ema import EMA
from gan_cli.training.evaluation import PeriodicEvaluation, evaluation_for
from gan_cli.training.hparams import log_hparams
from gan_cli.training.monitor import TrainingMonitor
from gan_cli.training.nan_guard import NanGuard
from gan_cli.training.pictures import GamePicture, SampleGrid, build_pictures
from gan_cli.training.rng import rng_state, seed_everything, set_rng_state
from gan_cli.training.schedule import LearningRateSchedule
from gan_cli.training.signals import StopSignal
from gan_cli.training.updates import Updates, build_optimizers

log = logging.getLogger(__name__)


@dataclass
class TrainingState:
    """Everything that changes while training. A checkpoint is this plus the config."""

    game: Game  # its networks (wrapped for DDP where several processes train) and its own state
    updates: Updates  # the game's optimizers, their loss scalers and the NaN guard
    averages: dict[str, EMA]  # network name -> its EMA copy (the game's `averaged`, unless train.ema_decay=null)
    data: TensorBatchSource | StreamedBatchSource
    rng: torch.Generator  # draws the latents (and other random choices) of training steps
    fixed_inputs: dict[str, torch.Tensor]  # sampler inputs on the CPU: every sample grid (or toy picture) shows these
    step: int = 0

    @property
    def sampler(self) -> nn.Module:
        """The network that makes the pictures: the EMA copy of the game's sampler when there is one."""
        return self.sampling_networks()[self.game.sampler]

    def sampling_networks(self) -> dict[str, nn.Module]:
        """The game's networks as samples come from them: their EMA copies where there are some."""
        return {name: self.averages[name].module if name in self.averages else network
                for name, network in self.game.networks.items()}

    def state_dict(self) -> dict:
        return {
            "step": self.step,
            "networks": {name: network.state_dict() for name, network in self.game.networks.items()},
            "ema": {name: ema.module.state_dict() for name, ema in self.averages.items()},
            "ema_updates": {name: ema.updates for name, ema in self.averages.items()},
            **self.updates.state_dict(),  # optimizers, scalers
            "game": self.game.state_dict(),
            "data": self.data.state_dict(),
            "rng": self.rng.get_state(),
            "fixed_inputs": self.fixed_inputs,
            "skipped_steps": self.updates.nan_guard.skipped_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        for name, network in self.game.networks.items():
            network.load_state_dict(state["networks"][name])
        for name, ema in self.averages.items():
            if name in state["ema"]:  # (absent when the run trained without an EMA)
                ema.module.load_state_dict(state["ema"][name])
                ema.updates = int(state["ema_updates"][name])
        self.updates.load_state_dict(state)
        self.game.load_state_dict(state["game"], self.data.device)
        self.data.load_state_dict(state["data"])
        self.rng.set_state(state["rng"])
        self.fixed_inputs = state["fixed_inputs"]
        self.updates.nan_guard.skipped_steps = state["skipped_steps"]


def training_loop(cfg: DictConfig, run_dir: Path, origin: dict, checkpoint: dict | None = None) -> float | None:
    """Train as `cfg` says, writing everything into `run_dir`; continue from `checkpoint` if given.

    `origin` (the command-line overrides) is stored in every checkpoint, so that `resume` can
    rebuild the same config. Returns the best value of `eval.best` over the run's evaluations (what
    a sweeper optimises), or None when nothing was evaluated.
    """
    parallel = distributed.current()  # one process, unless torchrun started several (DDP)
    device = parallel.device(cfg.device)
    training = build_training(cfg, device, parallel)
    state = training.state
    if checkpoint is not None:
        try:
            state.load_state_dict(checkpoint)
            set_rng_state(checkpoint["global_rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:  # an altered or foreign file
            raise GanError(f"the checkpoint's training state does not fit this run ({err})") from err
        state.updates.apply_settings(cfg.optimizer, state.game.node_of())  # a resumed run may change them
        parallel.require_same("the step of the checkpoint they resumed from", state.step)
    total_steps = planned_steps(cfg.train, len(state.data))
    if state.step > total_steps:
        raise GanError(
            f"the checkpoint is at step {state.step}, past this run's last step {total_steps} (train.steps / "
            f"train.epochs): nothing to train. To continue it, give more steps, for example train.steps={2 * state.step}"
        )
    _log_plan(cfg, state, total_steps, device, training.precision)
    schedule = LearningRateSchedule(state.updates, cfg.train.lr_decay_from, state.step + 1, total_steps)
    writes = parallel.is_main  # of several processes, only rank 0 writes files and logs
    evaluation = evaluation_for(cfg, state.game, state.data.shape, run_dir, device, checkpoint) if writes else None
    divergence = DivergenceGuard.for_run(cfg, run_dir, device, agree=parallel.any_rank)  # train.on_divergence

    # Train.
    config_record = OmegaConf.to_container(cfg, resolve=True)
    # Real batches a step reads: D's k updates, and the unrolled copy's K look-ahead updates.
    batches_per_step = cfg.train.d_steps + cfg.train.unroll_steps if training.state.game.uses_d_steps else 1
    images_per_step = cfg.train.batch_size * batches_per_step
    with (
        StopSignal() as stop,
        (
            TrainingMonitor(run_dir, state.step, total_steps, images_per_step, cfg.log.every, cfg.log.progress_bar)
            if writes
            else nullcontext()
        ) as monitor,
        logging_redirect_tqdm(),
    ):
        while state.step < total_steps:
            scalars = training.step()
            state.step += 1
            schedule.advance()  # the learning rates of the next step
            done = state.step == total_steps
            write_grid = state.step % cfg.samples.every == 0 or done
            evaluate = writes and evaluation.due(state.step, done)
            # Read once, and agreed by all processes: a signal arriving later is acted on after the next step.
            stopping = parallel.any_signal(stop.requested)
            write_checkpoint = state.step % cfg.checkpoint.every == 0 or done or stopping
            # NaN guard: stops here, before anything of a non-finite step is logged, evaluated or written
            # (at the same steps in every process).
            looked_at = parallel.any_rank(write_grid or evaluate or write_checkpoint or state.step % cfg.log.every == 0)
            state.updates.nan_guard.end_step(state.step, looked_at)
            divergence.observe(state.step, scalars, looked_at)  # also stops here, before the step's writes
            if writes:
                monitor.record(state.step, scalars, {**state.updates.learning_rates(), **state.updates.nan_guard.scalars()})
                if write_grid or evaluate or write_checkpoint:  # e.g. the autoencoder's mixture over its codes
                    state.game.prepare_sampling(state.sampling_networks(), state.data)
                if write_grid:
                    training.pictures.write(state, run_dir / "samples" / f"step_{state.step:07d}.png", monitor)
                if evaluate and evaluation.run(state, state.step, monitor):  # a new best
                    save_checkpoint(_checkpoint(state, config_record, origin, evaluation), run_dir / "checkpoints" / "best.pt")
                if write_checkpoint:
                    _write_checkpoints(_checkpoint(state, config_record, origin, evaluation), run_dir, cfg)
            if stopping:
                raise StoppedBySignal(
                    f"stopped by {stopping} at step {state.step}/{total_steps}; checkpoint written to "
                    f"{run_dir / 'checkpoints' / 'last.pt'}. Continue with: gan-train resume={run_dir}",
                    stopping,
                )
            faults.reached(f"after step {state.step}")  # a test's fault point between steps (gan_cli.faults)
        if writes:
            log_hparams(monitor, cfg, origin["overrides"], evaluation)
    log.info(f"Finished {total_steps} steps. Run directory: {run_dir}")
    return evaluation.best if writes else None


@dataclass
class Training:
    """A run's TrainingState with what its steps need: the precision of the forward passes
    (resolved: fp32, bf16 or fp16); plus the picture drawn every samples.every steps."""

    state: TrainingState
    precision: str
    pictures: SampleGrid | GamePicture
    cuda_graphs: bool = False  # compiled into CUDA graphs (train.compile_mode=reduce-overhead on a GPU)

    def step(self) -> dict[str, torch.Tensor]:
        """One training step of the game, then the EMA; its scalars as 0-d tensors on the device."""
        if self.cuda_graphs:  # a new iteration: the graphs' outputs of the last step may be overwritten now
            torch.compiler.cudagraph_mark_step_begin()
        state = self.state
        state.updates.step = state.step + 1
        forward_precision = partial(autocast, state.data.device, self.precision)
        scalars = state.game.step(state.data, state.updates, state.rng, forward_precision)
        for name, ema in state.averages.items():
            ema.update(state.game.networks[name])
        return scalars


def build_training(cfg: DictConfig, device: torch.device, parallel: distributed.Parallel) -> Training:
    """What `cfg` trains on `device`, at step 0, from `cfg.seed`. `parallel` shares batches and wraps
    the networks under torchrun (distributed.current())."""
    seed_everything(cfg.seed)
    precision = resolve_precision(cfg.train.precision, device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    else:  # no page faults for the activations of every step
        keep_freed_host_memory()

    # Load dataset.
    data = parallel.share_batches(build_batch_source(cfg.dataset, cfg.train.batch_size, device, cfg.seed))

    # Construct the game and its networks.
    game = build_game(cfg, data.shape)
    networks = {name: network.to(device) for name, network in game.networks.items()}
    if cfg.train.channels_last:  # NHWC: the layout oneDNN's and cuDNN's fastest convolutions work in
        networks = {name: network.to(memory_format=torch.channels_last) for name, network in networks.items()}
    pictures = build_pictures(cfg, data.shape, game, networks)  # sample grids, or the game on toy data
    averages = {name: EMA(networks[name], cfg.train.ema_decay) for name in game.averaged} if cfg.train.ema_decay is not None else {}
    optimizers = build_optimizers(cfg.optimizer, networks, game.optimizers, game.node_of())
    game.networks = {name: parallel.wrap(network) for name, network in networks.items()}
    nan_guard = NanGuard(cfg.train.on_nan, cfg.train.max_skipped_steps, tuple(optimizers), device, agree=parallel.all_true)
    state = TrainingState(
        game=game,
        updates=Updates(optimizers, game.networks, nan_guard, fp16=precision == "fp16", device=device),
        averages=averages,
        data=data,
        rng=torch.Generator(device=device).manual_seed(cfg.seed + 1),
        fixed_inputs=pictures.inputs,
    )
    cuda_graphs = False
    if cfg.train.compile:  # in place, after the EMA copy: the EMA networks only sample, eagerly
        compiled = compile_networks(tuple(networks.values()), cfg.train.compile_mode, device)
        cuda_graphs = compiled and device.type == "cuda" and cfg.train.compile_mode in CUDA_GRAPH_MODES
    return Training(state, precision, pictures, cuda_graphs)


def planned_steps(train_cfg: DictConfig, num_images: int) -> int:
    """Generator updates: train.steps, or enough for train.epochs passes of D over the real images."""
    if train_cfg.steps is not None:
        return train_cfg.steps
    batches_per_epoch = num_images // train_cfg.batch_size
    return max(1, round(train_cfg.epochs * batches_per_epoch / train_cfg.d_steps))


def _checkpoint(state: TrainingState, config_record: dict, origin: dict, evaluation: PeriodicEvaluation) -> dict:
    return {
        "format_version": FORMAT_VERSION,
        "config": config_record,
        "origin": origin,
        "image_shape": state.data.shape.record(),
        **state.state_dict(),
        "global_rng": rng_state(),  # torch's, CUDA's, Python's and NumPy's global generators
        "evaluation": evaluation.state_dict(),  # best-metric bookkeeping
    }


def _write_checkpoints(checkpoint: dict, run_dir: Path, cfg: DictConfig) -> None:
    folder = run_dir / "checkpoints"
    save_checkpoint(checkpoint, folder / "last.pt")
    keep_every = cfg.checkpoint.keep_every
    if keep_every and checkpoint["step"] % keep_every == 0:
        save_checkpoint(checkpoint, folder / f"step_{checkpoint['step']:07d}.pt")


def _log_plan(cfg: DictConfig, state: TrainingState, total_steps: int, device: torch.device, precision: str) -> None:
    def millions(module: nn.Module) -> str:
        return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}M"

    shape, game = state.data.shape, state.game
    labels = f"domains {', '.join(state.data.domains)}" if hasattr(state.data, "domains") else f"{shape.num_classes} classes"
    log.info(f"Data: {cfg.dataset.name}, {len(state.data)} {shape.describe()}, {labels}")
    sizes = ", ".join(f"{name} {millions(network)}" for name, network in game.networks.items())
    log.info(
        f"Model: {cfg.model.name} ({sizes} parameters), "
        + (f"loss {cfg.loss.name}, " if game.uses_loss else "")
        + f"device {device}, precision {precision}"
        + (" (auto)" if cfg.train.precision == "auto" else "")
        + (", channels_last" if cfg.train.channels_last else "")
    )
    start = f"resuming at step {state.step}" if state.step else "starting"
    k = f", k={cfg.train.d_steps}" if game.uses_d_steps else ""
    log.info(f"Training: {total_steps} steps of batch {cfg.train.batch_size}{k}; {start}")
