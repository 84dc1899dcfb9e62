"""Metrics on the evaluator's class posteriors: Inception-style score, mode coverage, label accuracy
and the accuracy of InfoGAN's categorical code as an unsupervised classifier.

Posteriors are (N, K) softmax outputs; labels and codes are int64 (N,).
"""

import math

import numpy as np
import torch

from gan_cli.metrics.modes import EPS, MIN_FAIR_SHARE, entropy


def inception_score(probs: torch.Tensor, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) (Salimans et al. 2016): (mean, std) over `splits` equal parts.

    High when each image is confidently one class and all classes appear; at most K (here 10).
    """
    p = probs.double().clamp(min=EPS)
    scores = []
    for part in p.chunk(min(splits, len(p))):
        marginal = part.mean(0, keepdim=True)  # p(y) over this part
        kl = (part * (part.log() - marginal.log())).sum(1).mean()
        scores.append(kl.exp())
    scores = torch.stack(scores)
    return scores.mean().item(), (scores.std().item() if len(scores) > 1 else 0.0)


def mode_coverage(probs: torch.Tensor) -> dict[str, float]:
    """How the evaluator's predicted classes spread over the K classes.

    classes_covered: classes holding at least a fifth of their fair share 1/K of the images (2% of
      them for K = 10): a collapsed generator whose digits the evaluator misreads now and then (it
      errs on about 0.5% of real digits) still shows 1.
    class_entropy: entropy of the predicted-class histogram in nats (log K when uniform).
    class_kl_uniform: KL(histogram || uniform) = log K - entropy (0 when uniform).
    """
    num_classes = probs.shape[1]
    counts = torch.bincount(probs.argmax(1), minlength=num_classes).double()
    share = counts / counts.sum()
    class_entropy = entropy(share)
    return {
        "classes_covered": int((share >= MIN_FAIR_SHARE / num_classes).sum()),
        "class_entropy": class_entropy,
        "class_kl_uniform": math.log(num_classes) - class_entropy,
    }


def label_accuracy(probs: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of images the evaluator assigns to the label they were generated (or labelled) for."""
    return (probs.argmax(1) == labels).double().mean().item()


def code_accuracy(codes: torch.Tensor, predicted: torch.Tensor, num_classes: int = 10) -> float:
    """Accuracy of a categorical code as a classifier, under the best one-to-one code -> class mapping.

    InfoGAN's code values are unnamed: value 3 may draw sevens. The mapping that maximises the
    matches (Hungarian algorithm on the code x class count table) is the fair reading; the InfoGAN
    paper reports 5% error on MNIST this way.
    """
    num_codes = int(codes.max()) + 1
    table = np.zeros((num_codes, num_classes), dtype=np.int64)
    np.add.at(table, (codes.numpy(), predicted.numpy()), 1)
    from scipy.optimize import linear_sum_assignment  # here: importing scipy takes half a second, needed only here

    rows, cols = linear_sum_assignment(table, maximize=True)
    return table[rows, cols].sum() / len(codes)
