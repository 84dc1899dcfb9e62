"""Training speed and time to quality, measured side by side in one run, reported as ratios.

    GAN_DATA_ROOT=../shared/data python scripts/benchmark_training.py             # all parts (about 1.5 h on 2 CPU cores)
    GAN_DATA_ROOT=../shared/data python scripts/benchmark_training.py --parts throughput
    GAN_DATA_ROOT=../shared/data python scripts/benchmark_training.py --tiny      # every part in a minute: checks the harness
    GAN_DATA_ROOT=../shared/data python scripts/benchmark_training.py --parts cyclegan_throughput --threads 1 --steps 10

Parts:
  throughput       training images/s of gan-train's step (built by the same function as gan-train, on
                   the default DCGAN at 28x28, batch 64) against a reference loop in the standard style
                   (torchvision MNIST with per-sample transforms, a DataLoader with 2 workers, Sigmoid +
                   BCELoss, a .item() per step): same networks, batch size and image size. The sides
                   alternate within every repeat; each ratio is taken within a repeat, then summarised.
  mfu              model FLOP utilisation: the step's FLOPs (torch.utils.flop_counter) times steps/s,
                   divided by the dense fp32 matrix-multiply rate measured in the same repeats, of
                   torch.mm and of oneDNN's matmul (faster than MKL's on some CPUs).
  time_to_quality  training wall time (evaluations excluded) until FID <= each --target-fid, for the default
                   `gan-train model=dcgan dataset=mnist` recipe and the reference recipe (pytorch/examples'
                   DCGAN: MNIST resized to 64x64, G 512-256-128-64, batch 128, Adam 2e-4, the standard loop
                   above). The two train in alternating slices; both are scored by the shipped evaluator at
                   training times spaced by 20% (the reference's 64x64 images resized to 28x28 with
                   antialiasing; its floor, real test images resized 28 -> 64 -> 28, is printed beside).
  bf16_quality     FID (n=10000) after the same number of steps of the default recipe in fp32 and in
                   bf16, for two seeds: bf16's speed must not cost sample quality.
  vae_throughput   training images/s of `gan-train experiment=vae_mnist`'s step against a VAE loop written
                   the standard way (pytorch/examples' vae: a Dataset over the same uint8 images with a
                   per-sample ToTensor, a DataLoader, Sigmoid + binary cross-entropy, a .item() per
                   step): the same Encoder and Decoder, batch size and optimizer, alternating as above.
  cyclegan_throughput
                   training images/s of `gan-train model=cyclegan dataset=mnist_domains`'s step (plain <->
                   invert, LSGAN, Adam 2e-4, batch 32; train.precision=auto and fp32) against a CycleGAN
                   loop written as junyanz/pytorch-CycleGAN-and-pix2pix writes it (an unaligned Dataset
                   read item by item through a DataLoader, fp32, requires_grad toggles, forward() then
                   backward_G, backward_D_A, backward_D_B as separate passes, a per-image pool of 50,
                   float() of every loss term each step): the same ResnetGenerators and PatchDiscriminators.
                   A step trains on 2 x batch images (one batch per domain), counted so for both sides.

Every figure is printed with its spread over repeats (median [min - max]). Within a round the sides run
one after the other, in reversed order every other round; each ratio is taken within a round. --threads
sets torch's threads for every side (they share one process): on a loaded machine fewer threads than
cores avoid OpenMP's oversubscription.
"""

import argparse
import itertools
import os
import platform
import random
import statistics
import time
from functools import partial

import torch
import torch.nn.functional as F
import torchvision
from hydra import compose, initialize_config_module
from torch import nn
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torch.utils.flop_counter import FlopCounterMode
from torchvision import transforms

import gan_cli.config  # noqa: F401  (registers the schemas)
from gan_cli.cli.run_dir import register_resolvers
from gan_cli.data.domain_transforms import to_domain
from gan_cli.data.domains import split_indices
from gan_cli.data.mnist import load_mnist
from gan_cli.data.source import DataShape
from gan_cli.device import resolve_precision
from gan_cli.games.cyclegan import CycleGANGame
from gan_cli.metrics.suite import MetricSuite
from gan_cli.models import build_networks
from gan_cli.sampling.files import from_uint8
from gan_cli.sampling.inputs import generate, seeded_inputs
from gan_cli.training import distributed
from gan_cli.training.loop import build_training, planned_steps
from gan_cli.training.rng import seed_everything

PARTS = ("throughput", "mfu", "time_to_quality", "bf16_quality", "vae_throughput", "cyclegan_throughput")
CPU = torch.device("cpu")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated, of {', '.join(PARTS)}")
    parser.add_argument("--repeats", type=int, default=10, help="throughput and MFU: rounds of all sides")
    parser.add_argument("--steps", type=int, default=20, help="throughput: timed steps per side and round")
    parser.add_argument("--target-fid", default="60,40,30", help="time to quality: FIDs at --eval-n to reach, comma-separated")
    parser.add_argument("--eval-n", type=int, default=5000, help="time to quality: images per FID")
    parser.add_argument("--max-minutes", type=float, default=60.0, help="time to quality: training budget per side")
    parser.add_argument("--quality-steps", type=int, default=None, help="bf16_quality: steps (default: the recipe's 5 epochs)")
    parser.add_argument("--tiny", action="store_true", help="every part in a minimal configuration (checks the harness)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads for every side (default: torch's own)")
    parser.add_argument("--data-root", default=os.environ.get("GAN_DATA_ROOT", "./data"))
    args = parser.parse_args()
    parts = args.parts.split(",")
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"--parts: unknown {', '.join(unknown)}; use any of {', '.join(PARTS)}")
    if args.tiny:
        args.repeats, args.steps, args.eval_n, args.max_minutes, args.quality_steps = 1, 2, 100, 0.05, 2

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    register_resolvers()
    print_machine()
    if "throughput" in parts or "mfu" in parts:
        side_by_side_throughput(args, show_mfu="mfu" in parts, show_throughput="throughput" in parts)
    if "time_to_quality" in parts:
        time_to_quality(args)
    if "bf16_quality" in parts:
        bf16_quality(args)
    if "vae_throughput" in parts:
        vae_throughput(args)
    if "cyclegan_throughput" in parts:
        cyclegan_throughput(args)


def print_machine() -> None:
    cpu = next((line.split(":", 1)[1].strip() for line in _cpuinfo() if line.startswith("model name")), platform.processor())
    print(f"machine: {cpu}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"python {platform.python_version()}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
          f"auto precision here: {resolve_precision('auto', CPU)}")


def _cpuinfo() -> list[str]:
    try:
        with open("/proc/cpuinfo") as f:
            return f.readlines()
    except OSError:
        return []


# --- the two training loops ---------------------------------------------------------------------


def train_config(overrides: list[str]):
    """gan-train's composed config for `overrides` (the same composition as the command line)."""
    with initialize_config_module(version_base="1.3", config_module="gan_cli.configs"):
        return compose(config_name="train", overrides=overrides)


class GanTrainLoop:
    """gan-train's training step, on what gan-train builds for `dataset` (read from data_root) and `overrides`."""

    def __init__(self, overrides: list[str], data_root: str, dataset: str = "mnist"):
        self.cfg = train_config([f"dataset={dataset}", f"dataset.root={data_root}", *overrides])
        self.training = build_training(self.cfg, CPU, distributed.current())
        self.step = self.training.step
        # The real images a step trains on: one batch per domain for CycleGAN, d_steps batches for D otherwise.
        batches = 2 if isinstance(self.training.state.game, CycleGANGame) else self.cfg.train.d_steps
        self.images_per_step = self.cfg.train.batch_size * batches

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """n images (n, 1, 28, 28) of the generator gan-train evaluates (its EMA)."""
        sampler = self.training.state.sampler
        with torch.no_grad():
            return generate(sampler, seeded_inputs(sampler, n, seed))


class ReferenceLoop:
    """DCGAN training as commonly written (pytorch/examples' dcgan): a torchvision dataset whose
    images are transformed one by one in DataLoader workers, D ending in a Sigmoid scored by BCELoss,
    D's update from two backward passes (real, then detached fakes), G's from a third pass of D, and
    the losses read back with .item() every step. Networks: the project's DCGAN, contiguous, fp32.
    Its data order and latents come from its own generators, so what it learns does not depend on
    the other side's steps in between."""

    def __init__(
        self, image_size: int, batch_size: int, g_width: int, d_width: int, data_root: str, workers: int = 2, seed: int = 0
    ):
        seed_everything(seed)  # the initial weights
        resize = [transforms.Resize(image_size)] if image_size != 28 else []
        dataset = torchvision.datasets.MNIST(
            data_root, train=True, download=False,
            transform=transforms.Compose([*resize, transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))]),
        )
        self.loader = DataLoader(
            dataset, batch_size, shuffle=True, num_workers=workers, drop_last=True, persistent_workers=workers > 0,
            generator=torch.Generator().manual_seed(seed),
        )
        self.latent_rng = torch.Generator().manual_seed(seed + 1)
        self.batches = iter(self.loader)
        model = train_config([f"model.g_width={g_width}", f"model.d_width={d_width}"]).model
        self.generator, self.discriminator = build_networks(model, DataShape((1, image_size, image_size), 10))
        self.image_size, self.batch_size, self.images_per_step = image_size, batch_size, batch_size
        adam = partial(torch.optim.Adam, lr=2e-4, betas=(0.5, 0.999))
        self.opt_g, self.opt_d = adam(self.generator.parameters()), adam(self.discriminator.parameters())
        self.bce = nn.BCELoss()

    def _next_batch(self) -> torch.Tensor:
        try:
            images, _ = next(self.batches)
        except StopIteration:  # a new epoch
            self.batches = iter(self.loader)
            images, _ = next(self.batches)
        return images

    def _probability(self, images: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.discriminator(images).logits)

    def step(self) -> None:
        real = self._next_batch()
        ones, zeros = torch.ones(len(real)), torch.zeros(len(real))
        self.discriminator.zero_grad()
        loss_real = self.bce(self._probability(real), ones)
        loss_real.backward()
        fake = self.generator(torch.randn(len(real), self.generator.latent_dim, generator=self.latent_rng))
        loss_fake = self.bce(self._probability(fake.detach()), zeros)
        loss_fake.backward()
        self.opt_d.step()
        self.generator.zero_grad()
        judged = self._probability(fake)
        loss_g = self.bce(judged, ones)
        loss_g.backward()
        self.opt_g.step()
        self.last_losses = ((loss_real + loss_fake).item(), loss_g.item(), judged.mean().item())

    def sample(self, n: int, seed: int) -> torch.Tensor:
        """n images resized to the evaluator's 28x28 (n, 1, 28, 28)."""
        with torch.no_grad():
            return to_evaluator_size(generate(self.generator, seeded_inputs(self.generator, n, seed)))


def to_evaluator_size(images: torch.Tensor) -> torch.Tensor:
    if images.shape[-1] == 28:
        return images
    return F.interpolate(images, size=(28, 28), mode="bilinear", antialias=True, align_corners=False).clamp(-1, 1)


# --- throughput and MFU ---------------------------------------------------------------------------


def spread(values: list[float], digits: int = 2) -> str:
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f} - {max(values):.{digits}f}]"


def ratio(a: list[float], b: list[float]) -> list[float]:
    """Round by round: a[i] / b[i]."""
    return [x / y for x, y in zip(a, b)]


def images_per_second(loop, steps: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        loop.step()
    started = time.perf_counter()
    for _ in range(steps):
        loop.step()
    return steps * loop.images_per_step / (time.perf_counter() - started)


def interleaved_rates(sides: dict, repeats: int, steps: int, warmup: int = 3, each_round=None) -> dict[str, list[float]]:
    """Training images/s of every side {name: loop} in each of `repeats` rounds, {name: [rate per round]}.
    In a round each side runs `warmup` untimed steps, then `steps` timed ones, one side after the other
    (in reversed order every other round, so that no side always follows the same one); `each_round()`
    runs first in every round. Ratios taken within a round see the same machine load."""
    rates = {name: [] for name in sides}
    for repeat in range(repeats):
        if each_round is not None:
            each_round()
        for name in list(sides)[:: 1 if repeat % 2 == 0 else -1]:
            rates[name].append(images_per_second(sides[name], steps, warmup))
        print(f"round {repeat + 1}/{repeats}: " + ", ".join(f"{name} {rates[name][-1]:.0f}" for name in sides) + " img/s",
              flush=True)
    return rates


def matmul_flops_per_second(size: int = 2048, seconds: float = 1.0) -> dict[str, float]:
    """The dense fp32 matrix-multiply rate of this machine, FLOP/s, {kernel: rate}: of torch.mm (MKL's
    sgemm on x86) and, where this torch has it, of oneDNN's matmul primitive (the kernels of its
    convolutions), which can be faster on the same CPU: the stricter denominator for MFU."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    b_transposed = b.t().contiguous()  # oneDNN's linear takes the weight as (out, in)
    kernels = {"torch.mm": lambda: a @ b}
    if hasattr(torch.ops.mkldnn, "_linear_pointwise"):
        kernels["oneDNN"] = lambda: torch.ops.mkldnn._linear_pointwise(a, b_transposed, None, "none", [], "")
    rates = {}
    for name, multiply in kernels.items():
        multiply()
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            multiply()
            count += 1
        rates[name] = count * 2 * size**3 / (time.perf_counter() - started)
    return rates


def step_flops(loop) -> int:
    with FlopCounterMode(display=False) as counter:
        loop.step()
    return counter.get_total_flops()


def side_by_side_throughput(args, show_mfu: bool, show_throughput: bool) -> None:
    width = 8 if args.tiny else 64
    nets = [f"model.g_width={width}", f"model.d_width={width}"]
    sides = {
        "reference loop (fp32)": ReferenceLoop(28, 64, width, width, args.data_root),
        "gan-train fp32, contiguous": GanTrainLoop([*nets, "train.precision=fp32", "train.channels_last=false"], args.data_root),
        "gan-train fp32": GanTrainLoop([*nets, "train.precision=fp32"], args.data_root),
        "gan-train bf16": GanTrainLoop([*nets, "train.precision=bf16"], args.data_root),
    }
    flops = {name: step_flops(loop) for name, loop in sides.items() if name.startswith("gan-train")}
    matmul = []
    matmul_seconds = 0.2 if args.tiny else 1.0
    rates = interleaved_rates(
        sides, args.repeats, args.steps, each_round=lambda: matmul.append(matmul_flops_per_second(seconds=matmul_seconds))
    )
    reference, fp32, bf16 = rates["reference loop (fp32)"], rates["gan-train fp32"], rates["gan-train bf16"]
    if show_throughput:
        print(f"\nthroughput, DCGAN 28x28 batch 64, {args.steps} steps per side and round, {args.repeats} rounds:")
        for name, values in rates.items():
            print(f"  {name:28s} {spread(values, 0)} img/s")
        print(f"  gan-train fp32 / reference:          {spread(ratio(fp32, reference))}x   (target >= 1.0)")
        print(f"  gan-train bf16 / gan-train fp32:     {spread(ratio(bf16, fp32))}x   (target >= 1.4)")
        print(f"  gan-train bf16 / reference:          {spread(ratio(bf16, reference))}x")
        print(f"  channels_last / contiguous (fp32):   {spread(ratio(fp32, rates['gan-train fp32, contiguous']))}x")
    if show_mfu:
        print("\nmodel FLOP utilisation (step FLOPs x steps/s / fp32 matmul rate measured in the same rounds):")
        for kernel in matmul[0]:
            peaks = [rates_of_round[kernel] for rates_of_round in matmul]
            print(f"  fp32 matmul rate of {kernel}: {spread([peak / 1e9 for peak in peaks], 0)} GFLOP/s")
        for name in ("gan-train fp32", "gan-train bf16"):
            loop = sides[name]
            achieved = [rate / loop.images_per_step * flops[name] for rate in rates[name]]
            print(f"  {name:16s} {flops[name] / 1e9:.2f} GFLOP per step, {spread([a / 1e9 for a in achieved], 1)} GFLOP/s")
            for kernel in matmul[0]:
                utilisation = [a / rates_of_round[kernel] for a, rates_of_round in zip(achieved, matmul)]
                target = "   (target >= 0.9)" if kernel == "torch.mm" else ""
                print(f"    MFU against {kernel + ':':10s} {spread(utilisation)}{target}")


# --- time to quality ------------------------------------------------------------------------------


class Contender:
    """One side of the race: a loop, its training clock, and its FID at evaluation points."""

    def __init__(self, name: str, loop, suite: MetricSuite, targets: list[float], seed: int = 0):
        self.name, self.loop, self.suite, self.seed = name, loop, suite, seed
        self.trained_seconds, self.steps = 0.0, 0
        self.history: list[tuple[float, int, float]] = []  # (training seconds, steps, FID)
        self.reached: dict[float, float] = {}  # target FID -> training seconds of the first evaluation under it
        self.targets = targets

    @property
    def done(self) -> bool:
        return len(self.reached) == len(self.targets)

    def train_until(self, seconds: float) -> None:
        started = time.perf_counter()
        offset = self.trained_seconds
        while self.trained_seconds < seconds:
            self.loop.step()
            self.steps += 1
            self.trained_seconds = offset + time.perf_counter() - started

    def evaluate(self) -> float:
        value = self.suite.evaluate_images(self.loop.sample(self.suite.n, self.seed)).values["fid"]
        self.history.append((self.trained_seconds, self.steps, value))
        for target in self.targets:
            if value <= target:
                self.reached.setdefault(target, self.trained_seconds)
        return value


def time_to_quality(args) -> None:
    targets = sorted((float(t) for t in args.target_fid.split(",")), reverse=True)
    suite = MetricSuite(["fid"], args.eval_n, 0, args.data_root, CPU)
    floor_64 = resized_floor(suite, args.data_root)
    print(f"\ntime to quality: FID <= {', '.join(map(str, targets))} at n={args.eval_n} against MNIST train "
          f"(real-data floor {suite.floor['fid']:.2f}; through the 64x64 resize {floor_64:.2f})", flush=True)
    width = 8 if args.tiny else 64
    tiny = [f"model.g_width={width}", f"model.d_width={width}"] if args.tiny else []
    contenders = [
        Contender("gan-train model=dcgan dataset=mnist (default recipe)", GanTrainLoop(tiny, args.data_root), suite, targets),
        Contender("reference: 64x64 DCGAN, batch 128", ReferenceLoop(64, 128, width, width, args.data_root), suite, targets),
    ]
    budget = args.max_minutes * 60
    next_eval = {c.name: min(15.0, budget) for c in contenders}
    while any(not c.done and c.trained_seconds < budget for c in contenders):
        for c in contenders:  # alternating slices: both sides see the same machine load
            if c.done or c.trained_seconds >= budget:
                continue
            c.train_until(next_eval[c.name])
            value = c.evaluate()
            print(f"  {c.name}: {c.trained_seconds:7.1f} s, {c.steps} steps, FID {value:.2f}", flush=True)
            next_eval[c.name] = min(next_eval[c.name] * 1.2, budget)
    ours, reference = contenders
    print("time to quality (training seconds until the first evaluation at or under each target; evaluations 20% apart):")
    for target in targets:
        times = [c.reached.get(target) for c in contenders]
        shown = [f"{t:.0f} s" if t is not None else f"> {budget:.0f} s" for t in times]
        if times[0] is None:
            ratio = "default recipe did not reach it"
        elif times[1] is None:
            ratio = f"> {budget / times[0]:.1f}x sooner (the reference did not reach it)"
        else:
            ratio = f"{times[1] / times[0]:.1f}x sooner"
        print(f"  FID <= {target:g}: default recipe {shown[0]}, reference {shown[1]}: {ratio}   (target >= 8x)")
    for c in contenders:
        print(f"  {c.name}: best FID {min(h[2] for h in c.history):.2f} after {c.trained_seconds:.0f} s, {c.steps} steps")


def resized_floor(suite: MetricSuite, data_root: str) -> float:
    """FID of real MNIST test images sent through the reference's 28 -> 64 -> 28 resizing."""
    images, _ = load_mnist(data_root, "test", download=False)
    real = from_uint8(images[: suite.n])
    up = F.interpolate(real, size=(64, 64), mode="bilinear", antialias=True, align_corners=False)
    return suite.evaluate_images(to_evaluator_size(up)).values["fid"]


# --- bf16 quality ---------------------------------------------------------------------------------


def bf16_quality(args) -> None:
    n = args.eval_n if args.tiny else 10_000
    suite = MetricSuite(["fid"], n, 0, args.data_root, CPU)
    tiny = ["model.g_width=8", "model.d_width=8"] if args.tiny else []
    results: dict[str, list[float]] = {"fp32": [], "bf16": []}
    for seed in (0, 1):
        for precision in results:
            loop = GanTrainLoop([*tiny, f"train.precision={precision}", f"seed={seed}"], args.data_root)
            steps = args.quality_steps or planned_default_steps(loop)
            for _ in range(steps):
                loop.step()
            results[precision].append(suite.evaluate_images(loop.sample(n, 0)).values["fid"])
            print(f"  seed {seed}, {precision}: FID {results[precision][-1]:.2f} after {steps} steps", flush=True)
    print(f"\nbf16 quality: FID at n={n} after the same steps (real-data floor {suite.floor['fid']:.2f}):")
    for precision, values in results.items():
        print(f"  {precision}: " + ", ".join(f"{v:.2f}" for v in values) + f"   (mean {statistics.mean(values):.2f})")


def planned_default_steps(loop: GanTrainLoop) -> int:
    return planned_steps(loop.cfg.train, len(loop.training.state.data))



# --- the VAE's throughput -------------------------------------------------------------------------


class MNISTLike(Dataset):
    """torchvision's MNIST Dataset as it reads an item: the uint8 image made a PIL image, then the
    per-sample transform (ToTensor: float (1, 28, 28) in [0, 1])."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor):
        self.images, self.labels, self.transform = images, labels, transforms.ToTensor()

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.transform(Image.fromarray(self.images[index, 0].numpy(), mode="L")), int(self.labels[index])


class ReferenceVAELoop:
    """A VAE trained as pytorch/examples' vae trains it, with gan-train's VAE networks (contiguous,
    fp32): a DataLoader of per-sample transformed images (no workers on a CPU, as the example),
    reparameterisation, the decoder's logits through a Sigmoid into binary cross-entropy summed over
    pixels, the KL in closed form, Adam, and the loss read with .item() every step."""

    def __init__(self, cfg, data_root: str, seed: int = 0):
        seed_everything(seed)
        images, labels = load_mnist(data_root, "train", download=False)
        self.loader = DataLoader(MNISTLike(images, labels), cfg.train.batch_size, shuffle=True, drop_last=True,
                                 generator=torch.Generator().manual_seed(seed))
        self.batches = iter(self.loader)
        from gan_cli.games.autoencoder import VAEGame  # the same networks gan-train builds

        networks = VAEGame.build_networks(cfg, DataShape((1, 28, 28), 10))
        self.encoder, self.decoder = networks["encoder"], networks["decoder"]
        parameters = [*self.encoder.parameters(), *self.decoder.parameters()]
        self.optimizer = torch.optim.Adam(parameters, lr=cfg.optimizer.generator.lr, betas=tuple(cfg.optimizer.generator.betas))
        self.images_per_step, self.train_loss = cfg.train.batch_size, 0.0

    def step(self) -> None:
        try:
            x, _ = next(self.batches)
        except StopIteration:  # a new epoch
            self.batches = iter(self.loader)
            x, _ = next(self.batches)
        self.optimizer.zero_grad()
        mean, log_var = self.encoder(x * 2 - 1)  # the networks read [-1, 1]
        z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
        recon = torch.sigmoid(self.decoder(z, logits=True))
        bce = F.binary_cross_entropy(recon, x, reduction="sum")
        kld = -0.5 * torch.sum(1 + log_var - mean.pow(2) - log_var.exp())
        loss = (bce + kld) / len(x)
        loss.backward()
        self.train_loss += loss.item()
        self.optimizer.step()


def vae_throughput(args) -> None:
    preset = ["experiment=vae_mnist", *(["model.width=8"] if args.tiny else [])]
    ours = GanTrainLoop(preset, args.data_root)
    sides = {"reference vae loop (fp32)": ReferenceVAELoop(ours.cfg, args.data_root), "gan-train experiment=vae_mnist": ours}
    rates = interleaved_rates(sides, args.repeats, args.steps)
    reference, gan_train = rates.values()
    print(f"\nVAE throughput, batch {ours.cfg.train.batch_size}, precision {ours.training.precision}, "
          f"{args.steps} steps per side and round, {args.repeats} rounds:")
    for name, values in rates.items():
        print(f"  {name:32s} {spread(values, 0)} img/s")
    print(f"  gan-train / reference:             {spread(ratio(gan_train, reference))}x   (target >= 1.4)")


# --- CycleGAN's throughput ------------------------------------------------------------------------


class UnalignedDomains(Dataset):
    """The reference's UnalignedDataset over two domains' uint8 images (N, 1, H, W) in memory: item i
    is image i of A and an image of B drawn at random (unaligned), each made a PIL image and transformed
    on its own (ToTensor, Normalize to [-1, 1]), as the reference transforms each file it opens. Its
    random draws come from its own generator."""

    def __init__(self, a: torch.Tensor, b: torch.Tensor, seed: int):
        self.a, self.b, self.random = a, b, random.Random(seed)
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.5,), (0.5,))])

    def __len__(self) -> int:
        return max(len(self.a), len(self.b))

    def _image(self, image: torch.Tensor) -> torch.Tensor:
        return self.transform(Image.fromarray(image[0].numpy()))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        b = self.random.randint(0, len(self.b) - 1)
        return {"A": self._image(self.a[index % len(self.a)]), "B": self._image(self.b[b])}


class ImagePool:
    """The reference's pool of past fakes, kept image by image in a Python list: until it holds `size`
    images each fake is stored and shown as is; then each fake is, with probability 1/2, shown as is,
    or stored in place of a random stored image, which is shown instead."""

    def __init__(self, size: int, seed: int):
        self.size, self.images, self.random = size, [], random.Random(seed)

    def query(self, fakes: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return fakes
        shown = []
        for image in fakes.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                shown.append(image)
            elif self.random.uniform(0, 1) > 0.5:
                slot = self.random.randint(0, self.size - 1)
                shown.append(self.images[slot].clone())
                self.images[slot] = image
            else:
                shown.append(image)
        return torch.cat(shown)


class ReferenceCycleGANLoop:
    """CycleGAN trained as junyanz/pytorch-CycleGAN-and-pix2pix trains it (its CycleGANModel and
    train.py), on the networks gan-train builds for `cfg` (CycleGANGame.build_networks: the same
    ResnetGenerators and PatchDiscriminators, contiguous, fp32): an UnalignedDomains DataLoader over
    the same split of MNIST into two domains, Adam over G_AB and G_BA and another over D_A and D_B
    (torch's default implementation), LSGAN as MSE against expanded targets, and per step forward()
    (the translations and the cycles), backward_G with D frozen by requires_grad toggles (identity,
    adversarial, cycle terms), then backward_D_A and backward_D_B, each its own backward pass on a
    per-image pool's fakes, and every loss term read with float() (get_current_losses). Names as in
    gan-train: G_AB: A -> B, D_A judges domain A."""

    def __init__(self, cfg, data_root: str, workers: int = 0, seed: int = 0):
        assert cfg.loss.name == "lsgan" and cfg.dataset.name == "mnist_domains", "the reference plays LSGAN on MNIST's domains"
        seed_everything(seed)  # the initial weights
        images, _ = load_mnist(data_root, "train", download=False)
        parts = split_indices(len(images), 2, cfg.dataset.seed)  # the disjoint halves gan-train's mnist_domains makes
        a, b = (to_domain(images[index], name) for index, name in zip(parts, cfg.dataset.domains))
        self.loader = DataLoader(
            UnalignedDomains(a, b, seed), cfg.train.batch_size, shuffle=True, num_workers=workers, drop_last=True,
            persistent_workers=workers > 0, generator=torch.Generator().manual_seed(seed),
        )
        self.batches = iter(self.loader)
        networks = CycleGANGame.build_networks(cfg, DataShape(tuple(a.shape[1:]), 2))
        self.g_ab, self.g_ba, self.d_a, self.d_b = (networks[name] for name in ("G_AB", "G_BA", "D_A", "D_B"))
        model, node = cfg.model, cfg.optimizer.generator
        self.lambda_cycle, self.lambda_identity = model.cycle_weight, model.identity_weight
        adam = partial(torch.optim.Adam, lr=node.lr, betas=tuple(node.betas))
        self.optimizer_g = adam(itertools.chain(self.g_ab.parameters(), self.g_ba.parameters()))
        self.optimizer_d = adam(itertools.chain(self.d_a.parameters(), self.d_b.parameters()))
        self.pool_a, self.pool_b = ImagePool(model.pool_size, seed + 1), ImagePool(model.pool_size, seed + 2)
        self.images_per_step = 2 * cfg.train.batch_size
        self.losses: dict[str, float] = {}

    @staticmethod
    def set_requires_grad(networks: list[nn.Module], requires_grad: bool) -> None:
        for network in networks:
            for parameter in network.parameters():
                parameter.requires_grad = requires_grad

    @staticmethod
    def gan_loss(prediction: torch.Tensor, target_is_real: bool) -> torch.Tensor:
        target = torch.tensor(1.0 if target_is_real else 0.0).expand_as(prediction)
        return F.mse_loss(prediction, target)

    def set_input(self) -> None:
        try:
            batch = next(self.batches)
        except StopIteration:  # a new epoch
            self.batches = iter(self.loader)
            batch = next(self.batches)
        self.real_a, self.real_b = batch["A"], batch["B"]

    def forward(self) -> None:
        self.fake_b = self.g_ab(self.real_a)
        self.rec_a = self.g_ba(self.fake_b)
        self.fake_a = self.g_ba(self.real_b)
        self.rec_b = self.g_ab(self.fake_a)

    def backward_g(self) -> None:
        identity = self.lambda_cycle * self.lambda_identity
        self.loss_idt_b = F.l1_loss(self.g_ab(self.real_b), self.real_b) * identity  # G_AB leaves B alone
        self.loss_idt_a = F.l1_loss(self.g_ba(self.real_a), self.real_a) * identity
        self.loss_g_ab = self.gan_loss(self.d_b(self.fake_b).logits, True)
        self.loss_g_ba = self.gan_loss(self.d_a(self.fake_a).logits, True)
        self.loss_cycle_a = F.l1_loss(self.rec_a, self.real_a) * self.lambda_cycle
        self.loss_cycle_b = F.l1_loss(self.rec_b, self.real_b) * self.lambda_cycle
        loss_g = self.loss_g_ab + self.loss_g_ba + self.loss_cycle_a + self.loss_cycle_b + self.loss_idt_a + self.loss_idt_b
        loss_g.backward()

    def backward_d_basic(self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        loss_real = self.gan_loss(discriminator(real).logits, True)
        loss_fake = self.gan_loss(discriminator(fake.detach()).logits, False)
        loss = (loss_real + loss_fake) * 0.5
        loss.backward()
        return loss

    def backward_d_a(self) -> None:
        self.loss_d_a = self.backward_d_basic(self.d_a, self.real_a, self.pool_a.query(self.fake_a))

    def backward_d_b(self) -> None:
        self.loss_d_b = self.backward_d_basic(self.d_b, self.real_b, self.pool_b.query(self.fake_b))

    def step(self) -> None:
        self.set_input()
        self.forward()
        self.set_requires_grad([self.d_a, self.d_b], False)
        self.optimizer_g.zero_grad()
        self.backward_g()
        self.optimizer_g.step()
        self.set_requires_grad([self.d_a, self.d_b], True)
        self.optimizer_d.zero_grad()
        self.backward_d_a()
        self.backward_d_b()
        self.optimizer_d.step()
        names = ("d_a", "g_ab", "cycle_a", "idt_a", "d_b", "g_ba", "cycle_b", "idt_b")
        self.losses = {name: float(getattr(self, f"loss_{name}").detach()) for name in names}  # logged every step


def cyclegan_throughput(args) -> None:
    # model=cyclegan's networks (sized for 28x28 on a CPU) with the paper's objective and optimizer, as
    # experiment=cyclegan_mnist trains them; --tiny shrinks them to check the harness.
    tiny = ["model.g_width=4", "model.g_blocks=1", "model.d_width=4", "train.batch_size=4"] if args.tiny else []
    preset = ["model=cyclegan", "dataset.domains=[plain,invert]", "loss=lsgan", "optimizer=adam", "train.batch_size=32", *tiny]
    ours = GanTrainLoop(preset, args.data_root, dataset="mnist_domains")  # train.precision=auto, channels_last
    fp32 = GanTrainLoop([*preset, "train.precision=fp32"], args.data_root, dataset="mnist_domains")
    auto = f"gan-train {ours.training.precision} (auto)"
    written_as_reference = ReferenceCycleGANLoop(ours.cfg, args.data_root)
    sides = {"reference cyclegan loop (fp32)": written_as_reference, "gan-train fp32": fp32, auto: ours}
    rates = interleaved_rates(sides, args.repeats, args.steps, warmup=1)
    reference, fp32_rates, auto_rates = rates.values()
    model, batch = ours.cfg.model, ours.cfg.train.batch_size
    print(f"\nCycleGAN throughput, {'/'.join(ours.cfg.dataset.domains)} 28x28, batch {batch} per domain "
          f"({2 * batch} images per step), G {model.g_width} wide x {model.g_blocks} blocks, D {model.d_width} wide, "
          f"{torch.get_num_threads()} torch threads, {args.steps} steps per side and round, {args.repeats} rounds:")
    for name, values in rates.items():
        print(f"  {name:42s} {spread(values, 1)} img/s")
    for name, values in (
        (f"{auto} / reference:", f"{spread(ratio(auto_rates, reference))}x   (target >= 1.4)"),
        ("gan-train fp32 / reference (fp32 vs fp32):", f"{spread(ratio(fp32_rates, reference))}x"),
        (f"gan-train {ours.training.precision} / gan-train fp32:", f"{spread(ratio(auto_rates, fp32_rates))}x"),
    ):
        print(f"  {name:42s} {values}")


if __name__ == "__main__":
    main()
