"""`gan-eval metrics=[reconstruction]`: how well an encoder family (model=ae, vae, VAE-GAN) rebuilds
real images it never trained on: n MNIST test images (the floor's images of the other metrics)
through its encoder and decoder.

- reconstruction_mse: the mean squared error per pixel on the [0, 1] intensity scale (floor 0);
- reconstruction_accuracy: the shipped evaluator's accuracy on the reconstructions against the true
  labels (floor: its accuracy on the test images themselves). A blurry reconstruction that keeps
  the digit keeps this high; one that turns a 4 into a 9 does not.
"""

import torch
from torch import nn

from gan_cli.metrics.evaluator import load_evaluator, score_images
from gan_cli.metrics.reference import mnist_subset
from gan_cli.metrics.suite import Evaluation
from gan_cli.models.autoencoder import reconstruct

NAME = "reconstruction"
SPLIT = "test"


def evaluate_reconstructions(encoder: nn.Module, decoder: nn.Module, n: int, data_root: str, batch_size: int) -> Evaluation:
    """The reconstruction values of n MNIST test images, beside their floors."""
    images, labels = mnist_subset(data_root, SPLIT, n)  # (n, 1, 28, 28) in [-1, 1], (n,)
    device = next(decoder.parameters()).device
    rebuilt = torch.cat([reconstruct(encoder, decoder, chunk.to(device)).cpu() for chunk in images.split(batch_size)])
    evaluator = load_evaluator(device)

    def accuracy(x: torch.Tensor) -> float:
        return (score_images(evaluator, x, batch_size).probs.argmax(1) == labels).float().mean().item()

    mse = ((rebuilt - images) / 2).square().mean().item()  # [-1, 1] -> [0, 1]: differences halve
    values = {"reconstruction_mse": mse, "reconstruction_accuracy": accuracy(rebuilt)}
    floor = {"reconstruction_mse": 0.0, "reconstruction_accuracy": accuracy(images)}
    note = f"reconstructions of {n} mnist/{SPLIT} images; floor: the images themselves"
    return Evaluation(values, floor, n, reference=f"mnist/{SPLIT}", floor_images=f"mnist/{SPLIT}", note=note)
