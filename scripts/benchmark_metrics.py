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
from omegaconf import OmegaConf

from gan_cli.data.source import DataShape
from gan_cli.metrics.suite import MetricSuite
from gan_cli.models import build_generator
from gan_cli.training.checkpoint import generator_from_checkpoint, load_checkpoint

TARGET_SECONDS = 15.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ckpt", help="a checkpoint or run directory (default: an untrained DCGAN generator)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data-root", default=os.environ.get("GAN_DATA_ROOT", "./data"))
    args = parser.parse_args()

    if args.ckpt:
        generator = generator_from_checkpoint(load_checkpoint(args.ckpt))
    else:
        torch.manual_seed(0)  # the same untrained weights, so the printed values repeat
        model = OmegaConf.create({"name": "dcgan", "latent_dim": 100, "g_width": 64, "d_width": 64, "init": "dcgan_normal"})
        generator = build_generator(model, DataShape((1, 28, 28), 10))
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
