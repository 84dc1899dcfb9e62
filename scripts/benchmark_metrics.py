"""Time FID and KID on 10,000 generated samples, generation, features and statistics included.

    GAN_DATA_ROOT=../shared/data python scripts/benchmark_metrics.py                       # an untrained DCGAN
    GAN_DATA_ROOT=../shared/data python scripts/benchmark_metrics.py --ckpt outputs/<run>  # a trained one

The first MetricSuite scores the real reference images (and caches them); the timed runs after it
read the cache, as every later evaluation does. The target: under 15 s on 2 CPU cores.
"""

import argparse
import os
import tempfile
import time

import torch
from hydra import compose, initialize_config_module

import gan_cli.config  # noqa: F401  (registers the schemas the configs extend)
from gan_cli.data.source import DataShape
from gan_cli.metrics.suite import MetricSuite
from gan_cli.models import build_generator
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.training.checkpoint import load_checkpoint

TARGET_SECONDS = 15.0


def untrained_generator() -> torch.nn.Module:
    """gan-train's default DCGAN generator for MNIST, untrained, from the project's own composed config:
    every key the model configs gain is there (a hand-written config here once lacked model.arch)."""
    with initialize_config_module(version_base="1.3", config_module="gan_cli.configs"):
        cfg = compose(config_name="train", overrides=["model=dcgan", "dataset=mnist"])
    torch.manual_seed(0)  # the same untrained weights, so the printed values repeat
    return build_generator(cfg.model, DataShape(MetricSuite.image_shape, 10))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="a checkpoint or run directory (default: an untrained DCGAN generator)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-root", default=os.environ.get("GAN_DATA_ROOT", "./data"))
    args = parser.parse_args()

    generator = sampler_from_checkpoint(load_checkpoint(args.ckpt)) if args.ckpt else untrained_generator()
    device = torch.device("cpu")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, n={args.n}")

    with tempfile.TemporaryDirectory() as cache:
        os.environ["GAN_CLI_CACHE"] = cache  # a cold cache first, whatever the user's holds
        started = time.perf_counter()
        MetricSuite(["fid", "kid"], args.n, 0, args.data_root, device)
        print(f"reference and floor, first time (scored and cached): {time.perf_counter() - started:.1f} s")
        for repeat in range(args.repeats):
            started = time.perf_counter()
            suite = MetricSuite(["fid", "kid"], args.n, 0, args.data_root, device)
            loaded = time.perf_counter()
            evaluation = suite.evaluate_generator(generator)
            seconds = time.perf_counter() - loaded
            verdict = "under" if seconds < TARGET_SECONDS else "OVER"
            print(
                f"run {repeat + 1}: FID {evaluation.values['fid']:.3f}, KID {evaluation.values['kid']:.5f} "
                f"in {seconds:.1f} s ({verdict} {TARGET_SECONDS:.0f} s; loading the cached reference and floor took "
                f"{loaded - started:.1f} s more)"
            )


if __name__ == "__main__":
    main()
