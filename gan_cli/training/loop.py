"""The training loop: k discriminator updates, then one generator update, until the step budget.

This is Algorithm 1 of Goodfellow et al. (2014). Every step also updates the EMA of G; at fixed
intervals it logs scalars, writes a sample grid of the fixed latents, and writes a checkpoint that
holds the whole TrainingState, so a resumed run continues bit for bit.
"""

import logging
import math
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn
from torch.optim.swa_utils import AveragedModel
from tqdm.contrib.logging import logging_redirect_tqdm

from gan_cli.data import TensorBatchSource, build_batch_source
from gan_cli.device import autocast, select_device
from gan_cli.errors import GanError, StoppedBySignal
from gan_cli.losses import build_loss
from gan_cli.models import build_networks
from gan_cli.sampling import generate, image_grid, save_png, seeded_inputs
from gan_cli.training.checkpoint import FORMAT_VERSION, save_checkpoint
from gan_cli.training.ema import make_ema
from gan_cli.training.monitor import TrainingMonitor
from gan_cli.training.nan_guard import NanGuard
from gan_cli.training.optim import build_optimizer
from gan_cli.training.rng import rng_state, seed_everything, set_rng_state
from gan_cli.training.signals import StopSignal

log = logging.getLogger(__name__)


@dataclass
class TrainingState:
    """Everything that changes while training. A checkpoint is this plus the config."""

    generator: nn.Module
    discriminator: nn.Module
    generator_ema: AveragedModel | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    scaler_g: torch.amp.GradScaler
    scaler_d: torch.amp.GradScaler
    data: TensorBatchSource
    latent_rng: torch.Generator  # draws the latents of training steps
    fixed_inputs: dict[str, torch.Tensor]  # generator inputs on the CPU: every sample grid shows these
    nan_guard: NanGuard  # applies each update unless it is non-finite (train.on_nan)
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
            "ema_updates": int(ema.n_averaged) if ema is not None else 0,
            "optimizer_g": self.opt_g.state_dict(),
            "optimizer_d": self.opt_d.state_dict(),
            "scaler_g": self.scaler_g.state_dict(),
            "scaler_d": self.scaler_d.state_dict(),
            "data": self.data.state_dict(),
            "latent_rng": self.latent_rng.get_state(),
            "fixed_inputs": self.fixed_inputs,
            "skipped_steps": self.nan_guard.skipped_steps,
        }

    def load_state_dict(self, state: dict) -> None:
        self.step = state["step"]
        self.generator.load_state_dict(state["generator"])
        self.discriminator.load_state_dict(state["discriminator"])
        if self.generator_ema is not None and state["generator_ema"] is not None:
            self.generator_ema.module.load_state_dict(state["generator_ema"])
            self.generator_ema.n_averaged.fill_(state["ema_updates"])
        self.opt_g.load_state_dict(state["optimizer_g"])
        self.opt_d.load_state_dict(state["optimizer_d"])
        self.scaler_g.load_state_dict(state["scaler_g"])
        self.scaler_d.load_state_dict(state["scaler_d"])
        self.data.load_state_dict(state["data"])
        self.latent_rng.set_state(state["latent_rng"])
        self.fixed_inputs = state["fixed_inputs"]
        self.nan_guard.skipped_steps = state.get("skipped_steps", 0)  # absent in checkpoints older than on_nan


def training_loop(cfg: DictConfig, run_dir: Path, origin: dict, checkpoint: dict | None = None) -> None:
    """Train as `cfg` says, writing everything into `run_dir`; continue from `checkpoint` if given.

    `origin` (the config-group choices and command-line overrides) is stored in every checkpoint,
    so that `resume` can rebuild the same config.
    """
    device = select_device(cfg.device)
    seed_everything(cfg.seed)
    precision = partial(autocast, device, cfg.train.precision)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    # Load dataset.
    data = build_batch_source(cfg.dataset, cfg.train.batch_size, device, cfg.seed)

    # Construct networks.
    generator, discriminator = (net.to(device) for net in build_networks(cfg.model, data.shape))
    loss = build_loss(cfg.loss)
    fp16 = cfg.train.precision == "fp16"
    state = TrainingState(
        generator=generator,
        discriminator=discriminator,
        generator_ema=make_ema(generator, cfg.train.ema_decay) if cfg.train.ema_decay is not None else None,
        opt_g=build_optimizer(cfg.optimizer.generator, generator, "optimizer.generator"),
        opt_d=build_optimizer(cfg.optimizer.discriminator, discriminator, "optimizer.discriminator"),
        scaler_g=torch.amp.GradScaler(device.type, enabled=fp16),
        scaler_d=torch.amp.GradScaler(device.type, enabled=fp16),
        data=data,
        latent_rng=torch.Generator(device=device).manual_seed(cfg.seed + 1),
        fixed_inputs=seeded_inputs(generator, cfg.samples.n, cfg.seed + 2),
        nan_guard=NanGuard(cfg.train.on_nan, cfg.train.max_skipped_steps, device),
    )
    if checkpoint is not None:
        try:
            state.load_state_dict(checkpoint)
            set_rng_state(checkpoint["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as err:  # an altered or foreign file
            raise GanError(f"the checkpoint's training state does not fit this run ({err})") from err
        _apply_learning_rates(cfg, state)  # a resumed run may change them
    total_steps = planned_steps(cfg.train, len(data))
    _log_plan(cfg, state, total_steps, device)

    # Train.
    config_record = OmegaConf.to_container(cfg, resolve=True)
    images_per_step = cfg.train.batch_size * cfg.train.d_steps
    with (
        StopSignal() as stop,
        TrainingMonitor(
            run_dir, state.step, total_steps, images_per_step, cfg.log.every, cfg.log.progress_bar
        ) as monitor,
        logging_redirect_tqdm(),
    ):
        while state.step < total_steps:
            scalars = train_step(state, loss, cfg.train.d_steps, precision)
            state.step += 1
            done = state.step == total_steps
            write_grid = state.step % cfg.samples.every == 0 or done
            write_checkpoint = state.step % cfg.checkpoint.every == 0 or done or stop.requested
            # NaN guard: stops here, before anything of a non-finite step is logged or written.
            state.nan_guard.end_step(state.step, write_grid or write_checkpoint or state.step % cfg.log.every == 0)
            monitor.record(state.step, scalars, {**_learning_rates(state), **state.nan_guard.scalars()})
            if write_grid:
                _write_sample_grid(state, run_dir, monitor)
            if write_checkpoint:
                _write_checkpoints(state, run_dir, cfg, config_record, origin)
            if stop.requested:
                raise StoppedBySignal(
                    f"stopped by {stop.requested} at step {state.step}/{total_steps}; checkpoint written to "
                    f"{run_dir / 'checkpoints' / 'last.pt'}. Continue with: gan-train resume={run_dir}",
                    stop.requested,
                )
    log.info(f"Finished {total_steps} steps. Run directory: {run_dir}")


def train_step(state: TrainingState, loss, d_steps: int, precision) -> dict[str, torch.Tensor]:
    """k discriminator updates on fresh real and fake batches, then one generator update.

    Returns the step's scalars as 0-d tensors on the device (no host sync here).
    """
    for i in range(d_steps):
        real, _ = state.data.next()  # (B, C, H, W) in [-1, 1]
        inputs = state.generator.sample_inputs(len(real), state.latent_rng, real.device)  # z: (B, latent_dim)
        # The last fake batch keeps its graph: the generator step below reuses it, saving a G pass.
        with torch.set_grad_enabled(i == d_steps - 1), precision():
            fake = state.generator(**inputs)
        d_loss, real_logits, fake_logits = discriminator_step(state, loss, real, fake.detach(), precision)
    g_loss = generator_step(state, loss, fake, precision)
    if state.generator_ema is not None:
        state.generator_ema.update_parameters(state.generator)
    return {
        "loss/D": d_loss,
        "loss/G": g_loss,
        "D(x)": torch.sigmoid(real_logits).mean(),
        "D(G(z))": torch.sigmoid(fake_logits).mean(),  # on the fakes D was trained on, before its update
    }


def discriminator_step(state: TrainingState, loss, real, fake, precision):
    """One update of D on a real and a fake batch; returns its loss and logits (detached)."""
    with precision():
        real_logits = state.discriminator(real)  # (B,)
        fake_logits = state.discriminator(fake)  # (B,)
    d_loss = loss.d_loss(real_logits.float(), fake_logits.float())
    state.opt_d.zero_grad(set_to_none=True)
    state.scaler_d.scale(d_loss).backward()
    state.nan_guard.apply_update("D", d_loss, state.opt_d, state.scaler_d, state.step + 1)
    return d_loss.detach(), real_logits.detach(), fake_logits.detach()


def generator_step(state: TrainingState, loss, fake, precision) -> torch.Tensor:
    """One update of G through D's judgement of `fake` (which carries G's graph)."""
    state.discriminator.requires_grad_(False)  # only G's gradients are needed: skip D's weight grads
    with precision():
        fake_logits = state.discriminator(fake)
    g_loss = loss.g_loss(fake_logits.float())
    state.opt_g.zero_grad(set_to_none=True)
    state.scaler_g.scale(g_loss).backward()
    state.nan_guard.apply_update("G", g_loss, state.opt_g, state.scaler_g, state.step + 1)
    state.discriminator.requires_grad_(True)
    return g_loss.detach()


def planned_steps(train_cfg: DictConfig, num_images: int) -> int:
    """Generator updates: train.steps, or enough for train.epochs passes of D over the real images."""
    if train_cfg.steps is not None:
        return train_cfg.steps
    batches_per_epoch = num_images // train_cfg.batch_size
    return max(1, round(train_cfg.epochs * batches_per_epoch / train_cfg.d_steps))


def _write_sample_grid(state: TrainingState, run_dir: Path, monitor: TrainingMonitor) -> None:
    images = generate(state.sampler, state.fixed_inputs)  # (n, C, H, W) in [-1, 1]
    grid = image_grid(images, nrow=math.ceil(math.sqrt(len(images))))
    save_png(grid, run_dir / "samples" / f"step_{state.step:07d}.png")
    monitor.add_image("samples", grid, state.step)


def _write_checkpoints(state: TrainingState, run_dir: Path, cfg: DictConfig, config_record: dict, origin: dict) -> None:
    checkpoint = {
        "format_version": FORMAT_VERSION,
        "config": config_record,
        "origin": origin,
        "image_shape": asdict(state.data.shape),
        **state.state_dict(),
        "rng": rng_state(),
    }
    folder = run_dir / "checkpoints"
    save_checkpoint(checkpoint, folder / "last.pt")
    keep_every = cfg.checkpoint.keep_every
    if keep_every and state.step % keep_every == 0:
        save_checkpoint(checkpoint, folder / f"step_{state.step:07d}.pt")


def _learning_rates(state: TrainingState) -> dict[str, float]:
    return {"lr/generator": state.opt_g.param_groups[0]["lr"], "lr/discriminator": state.opt_d.param_groups[0]["lr"]}


def _apply_learning_rates(cfg: DictConfig, state: TrainingState) -> None:
    """Loaded optimizer states carry their old learning rates; the config's are the ones to use."""
    for optimizer, node in ((state.opt_g, cfg.optimizer.generator), (state.opt_d, cfg.optimizer.discriminator)):
        for group in optimizer.param_groups:
            group["lr"] = node.lr


def _log_plan(cfg: DictConfig, state: TrainingState, total_steps: int, device: torch.device) -> None:
    def millions(module: nn.Module) -> str:
        return f"{sum(p.numel() for p in module.parameters()) / 1e6:.2f}M"

    shape = state.data.shape
    log.info(
        f"Data: {cfg.dataset.name}, {len(state.data)} images of {shape.channels}x{shape.image_size}x"
        f"{shape.image_size}, {shape.num_classes} classes"
    )
    log.info(
        f"Model: {cfg.model.name} (G {millions(state.generator)} parameters, D {millions(state.discriminator)}), "
        f"loss {cfg.loss.name}, device {device}, precision {cfg.train.precision}"
    )
    start = f"resuming at step {state.step}" if state.step else "starting"
    log.info(f"Training: {total_steps} steps of batch {cfg.train.batch_size}, k={cfg.train.d_steps}; {start}")
