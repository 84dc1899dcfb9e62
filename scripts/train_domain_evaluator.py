"""Train the domain evaluator that gan_cli ships (gan_cli/metrics/domain_evaluator.pt), reproducibly.

    GAN_DATA_ROOT=../shared/data python scripts/train_domain_evaluator.py            # rewrite the shipped file
    GAN_DATA_ROOT=../shared/data python scripts/train_domain_evaluator.py --out x.pt # elsewhere

The MNIST evaluator's recipe (scripts/train_evaluator.py: its seed, one thread, deterministic
kernels, optimizer, schedule and augmentation), with every training digit put through a random
domain of gan_cli.data.domain_transforms each epoch (after the augmentation, so each domain is
exactly its transform of a plausible digit) and two losses: the digit and the domain. The SHA-256 it
prints is the one recorded in gan_cli/metrics/domain_evaluator.py as DOMAIN_EVALUATOR_SHA256.
It refuses to write weights unless the digit accuracy on every transformed test set is >= 98.5%.
12 epochs: about 10 minutes (608 s of training, then the final scoring) on a busy 2-core machine.
"""

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from gan_cli.data.domain_transforms import to_domain
from gan_cli.data.mnist import load_mnist
from gan_cli.metrics.domain_evaluator import CHANNELS, DOMAIN_EVALUATOR_SHA256, DOMAINS, DomainEvaluator, score_domains
from train_evaluator import augment, deterministic, fit, parse_arguments, to_float, write_weights  # scripts/, beside this file

SHIPPED = Path(__file__).resolve().parents[1] / "gan_cli" / "metrics" / "domain_evaluator.pt"
EPOCHS = 12
TEST_SEED = 0  # colour_random's colours of the test digits: dataset.seed's default
PROGRESS_IMAGES = 1000  # test digits per domain scored after each epoch (all 10,000 at the end)
REQUIRED_ACCURACY = 0.985  # digit accuracy, on every domain's transformed test set


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """Float in [-1, 1] -> uint8 [0, 255], what the domain transforms take."""
    return x.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)


def random_domains(digits: torch.Tensor, generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Grey digits uint8 (B, 1, 28, 28) -> (each in a random domain, uint8 (B, 3, 28, 28); its domain
    index into DOMAINS, int64 (B,)); colour_random's colours from a seed drawn from `generator`."""
    domain = torch.randint(len(DOMAINS), (len(digits),), generator=generator)
    seed = int(torch.randint(2**31, (), generator=generator))
    images = torch.empty(len(digits), CHANNELS, *digits.shape[2:], dtype=torch.uint8)
    for k, name in enumerate(DOMAINS):
        chosen = domain == k
        images[chosen] = to_domain(digits[chosen], name, CHANNELS, seed)
    return images, domain


def domain_accuracies(model: DomainEvaluator, digits: torch.Tensor, labels: torch.Tensor) -> dict[str, tuple[float, float]]:
    """Domain name -> (digit accuracy, domain accuracy) on grey test digits uint8 (N, 1, 28, 28) put
    through that domain's transform (the domain read as the largest of all len(DOMAINS) logits)."""
    model.eval()
    result = {}
    for k, name in enumerate(DOMAINS):
        scores = score_domains(model, to_float(to_domain(digits, name, CHANNELS, TEST_SEED)), batch_size=1000)
        digit = (scores.digits == labels).float().mean().item()
        result[name] = digit, (scores.domain_logits.argmax(1) == k).float().mean().item()
    return result


def train(data_root: str) -> tuple[DomainEvaluator, dict[str, tuple[float, float]]]:
    """The trained evaluator and its (digit, domain) accuracy on every domain's test set."""
    deterministic()
    train_digits, train_labels = load_mnist(data_root, "train", download=False)
    test_digits, test_labels = load_mnist(data_root, "test", download=False)
    model = DomainEvaluator()
    started = time.perf_counter()

    def batch_loss(index: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        digits = to_uint8(augment(to_float(train_digits[index]), generator))
        images, domain = random_domains(digits, generator)
        digit_logits, domain_logits = model(to_float(images))
        return F.cross_entropy(digit_logits, train_labels[index]) + F.cross_entropy(domain_logits, domain)

    def after_epoch(epoch: int) -> None:
        progress = domain_accuracies(model, test_digits[:PROGRESS_IMAGES], test_labels[:PROGRESS_IMAGES])
        worst = min(progress, key=lambda name: progress[name][0])
        print(
            f"epoch {epoch + 1}/{EPOCHS}: digit accuracy on {PROGRESS_IMAGES} test digits per domain: worst {worst} "
            f"{progress[worst][0]:.4f}, mean {sum(d for d, _ in progress.values()) / len(progress):.4f}  "
            f"({time.perf_counter() - started:.0f} s)"
        )

    fit(model, len(train_digits), EPOCHS, batch_loss, after_epoch)
    return model, domain_accuracies(model, test_digits, test_labels)


def main() -> None:
    args = parse_arguments(__doc__, SHIPPED)
    model, accuracies = train(args.data_root)
    print("domain          digit accuracy  domain accuracy  (10,000 transformed MNIST test digits each)")
    for name, (digit, domain) in accuracies.items():
        print(f"{name:<15} {digit:>14.4f}  {domain:>15.4f}")
    short = [name for name, (digit, _) in accuracies.items() if digit < REQUIRED_ACCURACY]
    if short:
        raise SystemExit(f"digit accuracy below {REQUIRED_ACCURACY} on {', '.join(short)}; the weights were not written")
    write_weights(model, args.out, DOMAIN_EVALUATOR_SHA256, "gan_cli/metrics/domain_evaluator.py's DOMAIN_EVALUATOR_SHA256")


if __name__ == "__main__":
    main()
