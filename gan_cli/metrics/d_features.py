"""D's features as a representation: the protocol of Radford et al. 2016 (DCGAN), section 5.1.

Every convolutional layer of D (its output after normalisation and activation) is max-pooled to a
4x4 grid, flattened and concatenated; an MLP discriminator's hidden layers (its maxout units) are
taken as they are. The features are standardised and a linear classifier is fitted on a few labelled
training images (`labels_per_class` of each class) and tested on the whole test split. The same is
done for two baselines: the same D at its random initialisation, and K-means features of the raw
pixels (Coates & Ng 2011, the paper's comparison).

The classifier is scikit-learn's multinomial logistic regression (softmax, L2 penalty, L-BFGS)
rather than the paper's L2-SVM (LinearSVC): both are linear classifiers with an L2 penalty, but
LinearSVC fits one-vs-rest with liblinear, which took 5-10x longer here on 10,000 x 3,072 features,
and choosing the penalty fits many models. Its C is chosen by stratified cross-validation on the
labelled images alone, so the test split is never used to tune anything.

Unlabelled images are allowed by the protocol: the standardisation statistics and the K-means
centroids come from a fixed pool of training images, whose first `per_class` images of each class are
the labelled ones (so the 10-per-class set is inside the 100-per-class set, and so on).

scikit-learn is imported inside the functions that use it: importing it takes about a second, which
gan-eval's other metrics (and a misspelled override) should not pay.
"""

import logging
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gan_cli.data.mnist import load_mnist
from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.metrics.evaluator import IMAGE_SHAPE
from gan_cli.models.base import Discriminator
from gan_cli.models.mlp import Maxout
from gan_cli.inference import network_from_checkpoint
from gan_cli.sampling.files import from_uint8

log = logging.getLogger(__name__)

NAME = "d_features"
POOLED_SIZE = 4  # each convolutional feature map is max-pooled to POOLED_SIZE x POOLED_SIZE (the paper's 4x4)
# The output of these layers is a representation: the activation that ends a DCGAN stage, a maxout layer.
FEATURE_LAYERS = (nn.LeakyReLU, Maxout)
POOL_SIZE = 10_000  # unlabelled training images: standardisation statistics and K-means centroids
KMEANS_CENTROIDS = 1000  # Coates & Ng used 100 to 1600 (more centroids, better features, slower)
KMEANS_ITERATIONS = 30  # Lloyd's, from random images: k-means++ seeding of 1,000 centroids took minutes here
C_GRID = (1e-3, 1e-2, 1e-1)  # the inverse L2 penalty, chosen by cross-validation
MAX_FOLDS = 3
MAX_ITERATIONS = 300  # of L-BFGS
FEATURE_SETS = {"trained": "trained D", "random_init": "random-init D", "kmeans": "k-means pixels"}


# --- features ----------------------------------------------------------------------------------


def pooled(activation: torch.Tensor) -> torch.Tensor:
    """One layer's activation as a flat feature vector: (B, C, H, W) -> (B, C * 4 * 4) by max-pooling
    to a 4x4 grid; (B, U) fully-connected units stay (B, U)."""
    if activation.dim() == 4:
        activation = F.adaptive_max_pool2d(activation, POOLED_SIZE)
    return activation.flatten(1)


@torch.no_grad()
def discriminator_features(discriminator: Discriminator, images: torch.Tensor, batch_size: int = 500) -> torch.Tensor:
    """D's layer features of images (N, C, H, W) in [-1, 1]: (N, F) float32 on the CPU, the pooled outputs
    of every feature layer of D's body, concatenated. A conditional D reads every image with label 0: the
    probe gives it no label information."""
    device = next(discriminator.parameters()).device
    discriminator.eval()  # batch norm with its running statistics, no dropout: a feature depends on its image only
    chunks = []
    for start in range(0, len(images), batch_size):
        x = images[start : start + batch_size].to(device)
        labels = torch.zeros(len(x), dtype=torch.long, device=device) if discriminator.num_classes else None
        h, features = discriminator.condition(x, labels), []
        for layer in discriminator.body:
            h = layer(h)
            if isinstance(layer, FEATURE_LAYERS):
                features.append(pooled(h.float()))
        chunks.append(torch.cat(features, dim=1).cpu())
    return torch.cat(chunks)


def kmeans_features(pool: np.ndarray, images: np.ndarray, centroids: int, seed: int) -> np.ndarray:
    """Coates & Ng's "triangle" K-means features of flat pixels: centroids fitted on `pool` (P, D), and
    for each image (N, D) the activation max(0, mean_k(d_k) - d_k) of each centroid k at distance d_k
    (N, centroids): nearer than average centroids fire, the rest are 0."""
    from sklearn.cluster import KMeans  # here, not at the top: see the module's docstring

    kmeans = KMeans(n_clusters=centroids, init="random", n_init=1, max_iter=KMEANS_ITERATIONS, random_state=seed).fit(pool)
    distances = kmeans.transform(images)  # (N, centroids)
    return np.maximum(0.0, distances.mean(axis=1, keepdims=True) - distances).astype(np.float32)


# --- the labelled sets and the linear probe ---------------------------------------------------------


def labelled_pool(labels: torch.Tensor, per_class: int, size: int, seed: int) -> torch.Tensor:
    """Indices (P,) of a pool of training images drawn by `seed`, P = max(size, per_class * classes),
    ordered so that the first k * classes of it hold exactly k images of each class for every k <=
    per_class (labelled sets are nested). Raises ValueError when a class has fewer than per_class images."""
    order = torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))
    classes = int(labels.max()) + 1
    by_class = [order[labels[order] == k] for k in range(classes)]  # each class in the drawn order
    smallest = min(len(members) for members in by_class)
    if per_class > smallest:
        raise ValueError(f"{per_class} per class asked, and the smallest class has {smallest} images")
    interleaved = torch.stack([members[:per_class] for members in by_class], dim=1).flatten()  # k-th of each class, then k+1-th
    rest = order[~torch.isin(order, interleaved)][: max(0, size - len(interleaved))]
    return torch.cat([interleaved, rest])


def linear_probe(train: np.ndarray, train_labels: np.ndarray, test: np.ndarray, test_labels: np.ndarray, seed: int) -> float:
    """Test accuracy of a multinomial logistic regression fitted on (train (N, F), train_labels (N,)), its C
    chosen by stratified cross-validation on the training set alone; features are used as given
    (standardise them first)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression  # here: see the module's docstring
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    folds = min(MAX_FOLDS, int(np.bincount(train_labels).min()))
    classifier = LogisticRegression(C=C_GRID[-1], max_iter=MAX_ITERATIONS)
    with warnings.catch_warnings():  # a fit stopped at MAX_ITERATIONS is still a fit: its accuracy says how good
        warnings.simplefilter("ignore", ConvergenceWarning)
        if folds >= 2:
            search = GridSearchCV(classifier, {"C": list(C_GRID)}, cv=StratifiedKFold(folds, shuffle=True, random_state=seed))
            classifier = search.fit(train, train_labels).best_estimator_
        else:  # one image per class: nothing to cross-validate on
            classifier.fit(train, train_labels)
    return float((classifier.predict(test) == test_labels).mean())


def standardised(pool: np.ndarray, *sets: np.ndarray) -> list[np.ndarray]:
    """`sets` scaled by the mean and standard deviation of each feature over `pool` (constant features: 1)."""
    mean, std = pool.mean(axis=0), pool.std(axis=0)
    std[std < 1e-8] = 1.0
    return [(features - mean) / std for features in sets]


# --- the whole protocol -----------------------------------------------------------------------------


@dataclass
class LabelledImages:
    """A labelled dataset's two splits: images float (N, C, H, W) in [-1, 1], labels int64 (N,)."""

    name: str
    train: torch.Tensor
    train_labels: torch.Tensor
    test: torch.Tensor
    test_labels: torch.Tensor


@dataclass
class ProbeReport:
    """Test accuracies by labels per class and feature set, and the feature counts."""

    dataset: str
    accuracies: dict[int, dict[str, float]]  # {labels per class: {trained, random_init, kmeans: accuracy}}
    dims: dict[str, int]  # {feature set: features per image}
    classes: int
    test_size: int

    def table(self) -> list[str]:
        rows = [("labels/class", "labelled", *FEATURE_SETS.values())]
        for per_class, accuracy in self.accuracies.items():
            rows.append((str(per_class), str(per_class * self.classes), *(f"{100 * accuracy[key]:.2f}%" for key in FEATURE_SETS)))
        rows.append(("features", "", *(str(self.dims[key]) for key in FEATURE_SETS)))
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
        return lines + [
            f"test accuracy on all {self.test_size} {self.dataset} test images of a linear classifier (logistic regression) "
            "on standardised features, its L2 penalty chosen by cross-validation on the labelled images"
        ]

    def record(self) -> dict:
        return {
            "dataset": self.dataset,
            "test_images": self.test_size,
            "features": self.dims,
            "accuracy": {str(k): v for k, v in self.accuracies.items()},
        }


def probe(
    trained: Discriminator,
    initial: Discriminator,
    data: LabelledImages,
    labels_per_class: list[int],
    seed: int,
    batch_size: int = 500,
) -> ProbeReport:
    """The protocol for a trained D beside the same D at initialisation and K-means on pixels."""
    pool = labelled_pool(data.train_labels, max(labels_per_class), POOL_SIZE, seed)  # (P,) training indices
    pool_labels = data.train_labels[pool].numpy()
    test_labels = data.test_labels.numpy()
    features = {}  # feature set -> (pool features (P, F), test features (N_test, F)), standardised by the pool
    for key, discriminator in (("trained", trained), ("random_init", initial)):
        log.info(f"Features of {len(pool)} training and {len(data.test)} test images through the {FEATURE_SETS[key]}")
        on_pool, on_test = (discriminator_features(discriminator, images, batch_size).numpy() for images in (data.train[pool], data.test))
        features[key] = standardised(on_pool, on_pool, on_test)
    log.info(f"K-means ({KMEANS_CENTROIDS} centroids) on the pixels of {len(pool)} training images")
    pixels = data.train[pool].flatten(1).numpy(), data.test.flatten(1).numpy()
    on_pool, on_test = (kmeans_features(pixels[0], images, KMEANS_CENTROIDS, seed) for images in pixels)
    features["kmeans"] = standardised(on_pool, on_pool, on_test)

    classes = int(data.train_labels.max()) + 1
    accuracies = {}
    for per_class in labels_per_class:
        labelled = slice(0, per_class * classes)  # the pool's first per_class images of each class
        accuracies[per_class] = {
            key: linear_probe(on_pool[labelled], pool_labels[labelled], on_test, test_labels, seed)
            for key, (on_pool, on_test) in features.items()
        }
        log.info(f"{per_class} labels per class: " + ", ".join(f"{FEATURE_SETS[k]} {100 * a:.2f}%" for k, a in accuracies[per_class].items()))
    dims = {key: on_pool.shape[1] for key, (on_pool, _) in features.items()}
    return ProbeReport(data.name, accuracies, dims, classes, len(data.test))


# --- from a checkpoint --------------------------------------------------------------------------------

PROBE_DATASETS = ("mnist", "fashion_mnist")  # labelled 1x28x28 datasets with a test split (gan_cli.data.mnist)


def probe_dataset(checkpoint: dict, source: str) -> str:
    """The labelled dataset that probes this checkpoint's D: its own when it is MNIST or Fashion-MNIST,
    MNIST for any other D of 1x28x28 images (synthetic data, say). Refuses what cannot be probed."""
    if not isinstance((checkpoint.get("networks") or {}).get("D"), dict):
        raise GanError(
            f"metrics=[d_features] probes a discriminator's features, and {source} holds none: give the checkpoint "
            "of a GAN run (ckpt=<run directory> or <run>/checkpoints/<name>.pt)"
        )
    shape = DataShape.from_record(checkpoint["image_shape"]).sample_shape
    if shape != IMAGE_SHAPE:
        raise GanError(
            f"metrics=[d_features] fits its classifier on labelled MNIST or Fashion-MNIST images (1x28x28), and "
            f"the D of {source} reads {'x'.join(map(str, shape))} inputs: give the checkpoint of a 28x28 grayscale run"
        )
    dataset = (checkpoint["config"].get("dataset") or {}).get("name")
    return dataset if dataset in PROBE_DATASETS else "mnist"


def load_labelled(dataset: str, data_root: str) -> LabelledImages:
    """Both splits of MNIST or Fashion-MNIST from data_root (never downloaded), as LabelledImages."""
    splits = []
    for split in ("train", "test"):
        try:
            images, labels = load_mnist(data_root, split, download=False, dataset=dataset)
        except GanError as err:
            raise GanError(f"metrics=[d_features] needs labelled {dataset} images under data_root: {err}") from err
        splits += [from_uint8(images), labels]
    return LabelledImages(dataset, *splits)


def probe_checkpoint(checkpoint: dict, source: str, data_root: str, labels_per_class: list[int], seed: int, device, batch_size: int) -> ProbeReport:
    """The protocol for the D of `checkpoint`, beside the same D freshly initialised from `seed`."""
    data = load_labelled(probe_dataset(checkpoint, source), data_root)
    trained = network_from_checkpoint(checkpoint, "D").to(device)
    if not isinstance(trained, Discriminator):  # BEGAN's D is an autoencoder: no body of feature layers
        model = checkpoint["config"]["model"].get("name")
        raise GanError(f"metrics=[d_features] reads the layers of a GAN discriminator, and {source} is a model={model} run: "
                       "give the checkpoint of model=mlp, dcgan, cgan, cgan_mlp or infogan")
    if trained.pack > 1:  # PacGAN: its features belong to m-tuples of images, not to one image
        raise GanError(f"metrics=[d_features] probes D's features of single images, and {source}'s D judges "
                       f"{trained.pack} images at once (model.pack={trained.pack})")
    with torch.random.fork_rng(devices=[]):  # the initial weights are drawn from `seed`, the caller's stream untouched
        torch.manual_seed(seed)
        initial = network_from_checkpoint(checkpoint, "D", trained=False).to(device)
    try:
        return probe(trained, initial, data, labels_per_class, seed, batch_size)
    except ValueError as err:  # a class too small for the labels asked for
        raise GanError(f"labels_per_class={list(labels_per_class)}: {err} in {data.name}'s training split") from err
