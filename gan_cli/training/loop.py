"""The training loop: k discriminator updates, then one generator update, until the step budget.

This is Algorithm 1 of Goodfellow et al. (2014), with the terms each family adds where they belong:
gradient penalties and InfoGAN's Q loss in D's step, the InfoGAN term in G's step, weight clipping
after D's update. Every step also updates the EMA of G; at fixed intervals the loop logs scalars,
writes a sample grid of the fixed inputs, and writes a checkpoint that holds the whole
TrainingState, so a resumed run continues bit for bit. Under torchrun every process runs this loop on
its share of each batch, and rank 0 alone writes (gan_cli.training.distributed).
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
from gan_cli.losses import Objective, build_objective
from gan_cli.losses.regularizers import gradient_penalty, r1_penalty
from gan_cli.models import build_networks
from gan_cli.training import distributed
from gan_cli.training.checkpoint import FORMAT_VERSION, save_checkpoint
from gan_cli.training.compiled import CUDA_GRAPH_MODES, compile_networks
from gan_cli.training.divergence import DivergenceGuard
from gan_cli.training.ema import GeneratorEMA
from gan_cli.training.evaluation import PeriodicEvaluation
from gan_cli.training.hparams import log_hparams
from gan_cli.training.monitor import TrainingMonitor
from gan_cli.training.nan_guard import NanGuard
from gan_cli.training.optim import build_optimizer
from gan_cli.training.pictures import GamePicture, SampleGrid, build_pictures
from gan_cli.training.replay import ReplayBuffer
from gan_cli.training.rng import rng_state, seed_everything, set_rng_state
from gan_cli.training.signals import StopSignal

log = logging.getLogger(__name__)


@dataclass
class TrainingState:
    """Everything that changes while training. A checkpoint is this plus the config."""

    generator: nn.Module
    discriminator: nn.Module
    generator_ema: GeneratorEMA | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    data: TensorBatchSource | StreamedBatchSource
    latent_rng: torch.Generator  # draws the latents of training steps
    fixed_inputs: dict[str, torch.Tensor]  # generator inputs on the CPU: every sample grid (or toy picture) shows these
    nan_guard: NanGuard  # applies each update unless it is non-finite (train.on_nan)
    replay: ReplayBuffer | None = None  # past fakes shown to D again
    step: int = 0

    @property
    def sampler(self) -> nn.Module:
        """The generator that makes the pictures: the EMA one when there is one."""
        return self.generator_ema.module if self.generator_ema is not None else self.generator

    def state_dict(self) -> dict:
        ema = self.generator_ema
        return {
            "step": self.step,
            "generator": self.generator.state_dict(),
            "discriminator": self.discriminator.state_dict(),
            "generator_ema": ema.module.state_dict() if ema is not None else None,
            "ema_updates": ema.updates if ema is not None else 0,
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "data": self.data.state_dict(),
            "latent_rng": self.latent_rng.get_state(),
            "fixed_inputs": self.fixed_inputs,
            "replay": self.replay.state_dict() if self.replay is not None else None,
            "skipped_steps": self.nan_guard.skipped_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.generator_ema is not None and state["generator_ema"] is not None:
            self.generator_ema.module.load_state_dict(state["generator_ema"])
            self.generator_ema.updates = int(state["ema_updates"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.data.load_state_dict(state["data"])
        self.latent_rng.set_state(state["latent_rng"])
        self.fixed_inputs = state["fixed_inputs"]
        if self.replay is not None and state["replay"] is not None:
            self.replay.load_state_dict(state["replay"], self.data.device)
        self.nan_guard.skipped_steps = state.get("skipped_steps", 0)  # absent in checkpoints older than on_nan


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
            set_rng_state(checkpoint["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:  # an altered or foreign file
            raise GanError(f"the checkpoint's training state does not fit this run ({err})") from err
        _apply_optimizer_settings(cfg, state)  # a resumed run may change them
        parallel.require_same("the step of the checkpoint they resumed from", state.step)
    total_steps = planned_steps(cfg.train, len(state.data))
    if state.step > total_steps:
        raise GanError(
            f"the checkpoint is at step {state.step}, past this run's last step {total_steps} (train.steps / "
            f"train.epochs): nothing to train. To continue it, give more steps, for example train.steps={2 * state.step}"
        )
    _log_plan(cfg, state, total_steps, device, training.precision)
    writes = parallel.is_main  # of several processes, only rank 0 writes files and logs
    evaluation = PeriodicEvaluation(cfg, state.data.shape, run_dir, device, checkpoint) if writes else None
    divergence = DivergenceGuard.for_run(cfg, run_dir, device, agree=parallel.any_rank)  # train.on_divergence

    # Train.
    config_record = OmegaConf.to_container(cfg, resolve=True)
    images_per_step = cfg.train.batch_size * cfg.train.d_steps
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
            done = state.step == total_steps
            write_grid = state.step % cfg.samples.every == 0 or done
            evaluate = writes and evaluation.due(state.step, done)
            # Read once, and agreed by all processes: a signal arriving later is acted on after the next step.
            stopping = parallel.any_signal(stop.requested)
            write_checkpoint = state.step % cfg.checkpoint.every == 0 or done or stopping
            # NaN guard: stops here, before anything of a non-finite step is logged, evaluated or written
            # (at the same steps in every process).
            looked_at = parallel.any_rank(write_grid or evaluate or write_checkpoint or state.step % cfg.log.every == 0)
            state.nan_guard.end_step(state.step, looked_at)
            divergence.observe(state.step, scalars, looked_at)  # also stops here, before the step's writes
            if writes:
                monitor.record(state.step, scalars, {**_learning_rates(state), **state.nan_guard.scalars()})
                if write_grid:
                    training.pictures.write(state, run_dir / "samples" / f"step_{state.step:07d}.png", monitor)
                if evaluate and evaluation.run(state.sampler, state.step, monitor):  # a new best
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
    """A run's TrainingState with what its steps need: the objective, the precision of the forward
    passes (resolved: fp32, bf16 or fp16) and k; plus the picture drawn every samples.every steps."""

    state: TrainingState
    objective: Objective
    precision: str
    d_steps: int
    pictures: SampleGrid | GamePicture
    cuda_graphs: bool = False  # compiled into CUDA graphs (train.compile_mode=reduce-overhead on a GPU)

    def step(self) -> dict[str, torch.Tensor]:
        """One training step (k D updates, one G update); its scalars as 0-d tensors on the device."""
        if self.cuda_graphs:  # a new iteration: the graphs' outputs of the last step may be overwritten now
            torch.compiler.cudagraph_mark_step_begin()
        forward_precision = partial(autocast, self.state.data.device, self.precision)
        return train_step(self.state, self.objective, self.d_steps, forward_precision)


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

    # Construct networks and the objective.
    objective = build_objective(cfg.loss, cfg.model)
    generator, discriminator = (
        net.to(device) for net in build_networks(cfg.model, data.shape, objective.penalizes_input_gradients)
    )
    if cfg.train.channels_last:  # NHWC: the layout oneDNN's and cuDNN's fastest convolutions work in
        generator, discriminator = (net.to(memory_format=torch.channels_last) for net in (generator, discriminator))
    fp16 = precision == "fp16"
    pictures = build_pictures(cfg, data.shape, generator, objective)  # sample grids, or the game on toy data
    state = TrainingState(
        generator=parallel.wrap(generator),
        discriminator=parallel.wrap(discriminator),
        generator_ema=GeneratorEMA(generator, cfg.train.ema_decay) if cfg.train.ema_decay is not None else None,
        opt_g=build_optimizer(cfg.optimizer.generator, generator, "optimizer.generator"),
        opt_d=build_optimizer(cfg.optimizer.discriminator, discriminator, "optimizer.discriminator"),
        scaler_g=torch.amp.GradScaler(device.type, enabled=fp16),
        scaler_d=torch.amp.GradScaler(device.type, enabled=fp16),
        data=data,
        latent_rng=torch.Generator(device=device).manual_seed(cfg.seed + 1),
        fixed_inputs=pictures.inputs,
        nan_guard=NanGuard(cfg.train.on_nan, cfg.train.max_skipped_steps, device, agree=parallel.all_true),
        replay=ReplayBuffer(cfg.train.replay_size, cfg.train.replay_fraction) if cfg.train.replay_size else None,
    )
    cuda_graphs = False
    if cfg.train.compile:  # in place, after the EMA copy: the EMA generator only samples, eagerly
        compiled = compile_networks((generator, discriminator), cfg.train.compile_mode, device)
        cuda_graphs = compiled and device.type == "cuda" and cfg.train.compile_mode in CUDA_GRAPH_MODES
    return Training(state, objective, precision, cfg.train.d_steps, pictures, cuda_graphs)


def train_step(state: TrainingState, objective: Objective, d_steps: int, precision) -> dict[str, torch.Tensor]:
    """k discriminator updates on fresh real and fake batches, then one generator update.

    Returns the step's scalars as 0-d tensors on the device (no host sync here).
    """
    for i in range(d_steps):
        real, labels = state.data.next()  # (B, C, H, W) in [-1, 1], (B,) or None
        inputs = state.generator.sample_inputs(len(real), state.latent_rng, real.device)  # z (B, latent_dim), y, c
        # The last fake batch keeps its graph: the generator step below reuses it, saving a G pass.
        with torch.set_grad_enabled(i == d_steps - 1), precision():
            fake = state.generator(**inputs)
        d_fake, d_inputs = fake.detach(), inputs
        if state.replay is not None:
            d_fake, d_inputs = state.replay.mix(d_fake, inputs, state.latent_rng)
        d_scalars = discriminator_step(state, objective, real, labels, d_fake, d_inputs, precision)
    g_scalars = generator_step(state, objective, fake, inputs, precision)
    if state.generator_ema is not None:
        state.generator_ema.update(state.generator)
    return {**d_scalars, **g_scalars}


def discriminator_step(state: TrainingState, objective: Objective, real, labels, fake, fake_inputs, precision):
    """One update of D on a real batch (with its labels) and a fake batch (with the inputs that made it)."""
    discriminator, loss = state.discriminator, objective.adversarial
    with precision():
        real_out = discriminator(real, labels)
        fake_out = discriminator(fake, fake_inputs.get("y"))
        # Matching-aware D (Reed et al. 2016): real images under wrong labels count as fakes too.
        mismatched = discriminator(real, wrong_labels(labels, state)).logits if objective.matching_aware else None
    real_logits, fake_logits = real_out.logits.float(), fake_out.logits.float()  # (B,)
    judged_fake = fake_logits if mismatched is None else torch.cat([fake_logits, mismatched.float()])
    terms = {"loss/D": loss.d_loss(real_logits, judged_fake)}
    # Regularizers on D's input gradients, computed in fp32 outside autocast.
    if objective.gradient_penalty:
        penalty = gradient_penalty(discriminator, real, fake, labels, state.latent_rng)
        terms["loss/gradient_penalty"] = objective.gradient_penalty * penalty
    if objective.r1:
        terms["loss/r1"] = objective.r1 * r1_penalty(discriminator, real, labels)
    if objective.info is not None:  # Q learns to read the codes back from the fakes
        terms["loss/info_D"] = objective.info(fake_out.codes, fake_inputs["c"])
    _update(state, "D", sum(terms.values()))
    if objective.clip is not None:  # WGAN: clipped weights keep the critic (roughly) Lipschitz
        with torch.no_grad():
            for param in discriminator.parameters():
                param.clamp_(-objective.clip, objective.clip)
    scalars = {
        **{name: value.detach() for name, value in terms.items()},
        "D(x)": loss.score(real_logits).mean().detach(),
        "D(G(z))": loss.score(fake_logits).mean().detach(),  # on the fakes D trained on, before its update
    }
    if loss.critic:  # E[D(x)] - E[D(G(z))]: the critic's estimate of the Wasserstein distance
        scalars["critic/wasserstein_estimate"] = (real_logits.mean() - fake_logits.mean()).detach()
    return scalars


def generator_step(state: TrainingState, objective: Objective, fake, inputs, precision) -> dict[str, torch.Tensor]:
    """One update of G through D's judgement of `fake` (which carries G's graph)."""
    state.discriminator.requires_grad_(False)  # only G's gradients are needed: skip D's weight grads
    with precision():
        out = state.discriminator(fake, inputs.get("y"))
    terms = {"loss/G": objective.adversarial.g_loss(out.logits.float())}
    if objective.info is not None:  # G learns to make its codes readable: the InfoGAN term
        terms["loss/info_G"] = objective.info(out.codes, inputs["c"])
    _update(state, "G", sum(terms.values()))
    state.discriminator.requires_grad_(True)
    return {name: value.detach() for name, value in terms.items()}


def _update(state: TrainingState, network: str, loss: torch.Tensor) -> None:
    """One optimizer step of `network` ("D" or "G") on `loss` (loss scaling is a no-op unless training
    in fp16); the NaN guard applies it unless the loss or the gradients are non-finite (train.on_nan)."""
    optimizer, scaler = (state.opt_d, state.scaler_d) if network == "D" else (state.opt_g, state.scaler_g)
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    state.nan_guard.apply_update(network, loss, optimizer, scaler, state.step + 1)


def wrong_labels(labels: torch.Tensor, state: TrainingState) -> torch.Tensor:
    """Each label shifted to a different class, uniformly among the others."""
    classes = state.discriminator.num_classes
    shift = torch.randint(1, classes, labels.shape, generator=state.latent_rng, device=labels.device)
    return (labels + shift) % classes


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
        "rng": rng_state(),
        "evaluation": evaluation.state_dict(),  # best-metric bookkeeping
    }


def _write_checkpoints(checkpoint: dict, run_dir: Path, cfg: DictConfig) -> None:
    folder = run_dir / "checkpoints"
    save_checkpoint(checkpoint, folder / "last.pt")
    keep_every = cfg.checkpoint.keep_every
    if keep_every and checkpoint["step"] % keep_every == 0:
        save_checkpoint(checkpoint, folder / f"step_{checkpoint['step']:07d}.pt")


def _learning_rates(state: TrainingState) -> dict[str, float]:
    return {"lr/generator": state.opt_g.param_groups[0]["lr"], "lr/discriminator": state.opt_d.param_groups[0]["lr"]}


def _apply_optimizer_settings(cfg: DictConfig, state: TrainingState) -> None:
    """Loaded optimizer states carry their old learning rates and implementation (`fused`); the
    config's are the ones to use."""
    for optimizer, node in ((state.opt_g, cfg.optimizer.generator), (state.opt_d, cfg.optimizer.discriminator)):
        for group in optimizer.param_groups:
            group["lr"] = node.lr
            if "fused" in node and "fused" in group:  # (optimizers without a fused implementation have no such key)
                group["fused"] = node.fused


def _log_plan(cfg: DictConfig, state: TrainingState, total_steps: int, device: torch.device, precision: str) -> None:
    def millions(module: nn.Module) -> str:
        return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}M"

    shape = state.data.shape
    log.info(f"Data: {cfg.dataset.name}, {len(state.data)} {shape.describe()}, {shape.num_classes} classes")
    log.info(
        f"Model: {cfg.model.name} (G {millions(state.generator)} parameters, D {millions(state.discriminator)}), "
        f"loss {cfg.loss.name}, device {device}, precision {precision}"
        + (" (auto)" if cfg.train.precision == "auto" else "")
        + (", channels_last" if cfg.train.channels_last else "")
    )
    start = f"resuming at step {state.step}" if state.step else "starting"
    log.info(f"Training: {total_steps} steps of batch {cfg.train.batch_size}, k={cfg.train.d_steps}; {start}")
