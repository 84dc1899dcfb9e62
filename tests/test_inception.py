"""features=inception: Inception-v3 pool features, the suite against real images, its cache, bad weights.

The network is a randomly initialised inception_v3 saved to a temporary .pth: its numbers mean
nothing, but shapes, FID of a set against itself, FID's growth with noise, the cache and the
errors are the same as with real weights. Nothing is downloaded. Most tests feed it 75x75 inputs
(the smallest it takes) instead of 299x299, about 16 times faster on a CPU.
"""

import pytest
import torch
from torch import nn

import gan_cli.metrics.inception as inception_module
import gan_cli.metrics.inception_suite as inception_suite_module
from gan_cli.errors import GanError
from gan_cli.metrics.evaluator import MNISTEvaluator
from gan_cli.metrics.frechet import fid
from gan_cli.metrics.inception import IMAGENET_MEAN, IMAGENET_STD, inception_scores, load_inception, preprocess
from gan_cli.metrics.inception_suite import InceptionSuite, dataset_images
from gan_cli.sampling.files import from_uint8

FAKE = {"name": "fake", "num_samples": 64, "channels": 3, "image_size": 32, "num_classes": 10, "seed": 0}


@pytest.fixture
def small_inputs(monkeypatch):
    monkeypatch.setattr(inception_module, "INPUT_SIZE", 75)


def test_preprocess_repeats_grey_resizes_with_antialiasing_and_normalises():
    grey = torch.zeros(2, 1, 28, 28)  # mid-grey: 0.5 after [-1, 1] -> [0, 1]
    x = preprocess(grey)
    assert x.shape == (2, 3, 299, 299)
    for c in range(3):
        assert torch.allclose(x[:, c], torch.tensor((0.5 - IMAGENET_MEAN[c]) / IMAGENET_STD[c]), atol=1e-6)
    white = preprocess(torch.full((1, 3, 8, 8), 255, dtype=torch.uint8))  # uint8 is read as [0, 255]
    assert torch.allclose(white[0, 0], torch.tensor((1 - IMAGENET_MEAN[0]) / IMAGENET_STD[0]), atol=1e-6)
    # A fine checkerboard shrunk to 299: antialiasing averages it to mid-grey (without, it would alias).
    checkerboard = (torch.arange(600).view(1, -1) + torch.arange(600).view(-1, 1)) % 2 * 2.0 - 1  # (600, 600) of +-1
    shrunk = preprocess(checkerboard.expand(1, 3, -1, -1))
    assert (shrunk * torch.tensor(IMAGENET_STD).view(1, 3, 1, 1) + torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1) - 0.5).abs().max() < 0.05


def test_pool_features_of_grey_and_colour_images_of_any_size(inception_weights):
    network = load_inception(str(inception_weights))
    assert len(network.sha256) == 64
    grey = inception_scores(network, torch.rand(2, 1, 28, 28) * 2 - 1)  # MNIST-like, at the real 299x299
    colour = inception_scores(network, torch.randint(0, 256, (2, 3, 40, 52), dtype=torch.uint8))  # not even square
    for scores in (grey, colour):
        assert scores.features.shape == (2, 2048) and scores.probs is None
        assert scores.features.isfinite().all() and scores.features.std() > 1e-3


def test_fid_against_itself_is_zero_and_grows_with_noise(inception_weights, small_inputs):
    network = load_inception(str(inception_weights))
    images = from_uint8(dataset_images(FAKE, "unused").load(30))  # (30, 3, 32, 32) blobs
    reference = inception_scores(network, images[15:]).features
    g = torch.Generator().manual_seed(0)

    def features(level):
        return inception_scores(network, (images[:15] + level * torch.randn(images[:15].shape, generator=g)).clamp(-1, 1)).features

    fids = [fid(features(level), reference) for level in (0, 0.3, 1.0)]
    assert fid(reference, reference) < 1e-6 * fids[0]
    assert fids == sorted(fids) and fids[-1] > 2 * fids[0], fids


def test_suite_caches_the_real_features_and_floor_and_scores_its_reference_as_perfect(
    inception_weights, small_inputs, monkeypatch, tmp_path
):
    monkeypatch.setenv("GAN_CLI_CACHE", str(tmp_path))
    scored = []  # how many images went through the network
    original = inception_suite_module.inception_scores
    monkeypatch.setattr(inception_suite_module, "inception_scores", lambda net, x: scored.append(len(x)) or original(net, x))
    real = dataset_images({**FAKE, "root": "/elsewhere", "workers": 4}, "unused")  # where it is read: not in the key
    cpu = torch.device("cpu")

    suite = InceptionSuite(["fid", "kid", "precision_recall"], 10, 0, real, str(inception_weights), cpu)
    assert scored == [20]  # 10 for the reference, 10 for the floor
    assert len(list(tmp_path.glob("inception-*_fake-all-*_10.pt"))) == 1
    assert len(list(tmp_path.glob("floor_inception-*_fake-all-*_10_fid-kid-precision_recall_seed0_*.pt"))) == 1
    assert suite.reference.features.shape == (10, 2048) and suite.floor["fid"] > 0

    again = InceptionSuite(["fid", "kid", "precision_recall"], 10, 0, dataset_images(FAKE, "x"), str(inception_weights), cpu)
    assert scored == [20] and again.floor == suite.floor  # all from the cache
    assert torch.equal(again.reference.features, suite.reference.features)

    reference_images = from_uint8(real.load(20)[:10])  # the reference itself: a perfect generator
    evaluation = suite.evaluate_images(reference_images, labels=torch.zeros(10, dtype=torch.long))
    assert evaluation.values["fid"] < 1e-6 * suite.floor["fid"]
    assert evaluation.values["precision"] == evaluation.values["recall"] == 1.0
    assert "label_accuracy" not in evaluation.values  # no class posteriors
    assert evaluation.table()[-1] == "real-data floor: 10 other fake/all images against the same 10 fake/all images"
    noisy = suite.evaluate_images((reference_images + torch.randn(reference_images.shape)).clamp(-1, 1))
    assert noisy.values["fid"] > suite.floor["fid"]


def test_real_sets_too_small_for_the_floor_and_posterior_metrics_are_refused(inception_weights):
    real = dataset_images(FAKE, "unused")  # 64 images
    with pytest.raises(GanError, match=r"dataset=fake holds 64 images, and n=40 needs 80: n for the reference and n more"):
        InceptionSuite(["fid"], 40, 0, real, str(inception_weights), torch.device("cpu"))
    with pytest.raises(GanError, match=r"metrics: is, coverage need class posteriors, which only the shipped MNIST evaluator"):
        InceptionSuite(["fid", "is", "coverage"], 20, 0, real, str(inception_weights), torch.device("cpu"))
    with pytest.raises(GanError, match=r"features=inception compares with real images, and the checkpoint's dataset=ring_2d"):
        dataset_images({"name": "ring_2d"}, "unused")


def test_weights_that_are_not_an_inception_v3_state_dict_are_one_clear_error(inception_weights, tmp_path):
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    evaluator = tmp_path / "evaluator.pth"
    torch.save(MNISTEvaluator().state_dict(), evaluator)
    pickled = tmp_path / "module.pth"
    torch.save(nn.Linear(2, 2), pickled)  # a whole module: loading it would run code
    reshaped = tmp_path / "reshaped.pth"
    state = torch.load(inception_weights, weights_only=True)
    torch.save({**state, "fc.weight": torch.zeros(10, 2048), "fc.bias": torch.zeros(10)}, reshaped)
    for path, message in [
        (tmp_path / "missing.pth", "does not exist; give a torchvision inception_v3 state_dict (.pth) on this machine"),
        (tmp_path, "is not a file"),
        (garbage, "is not a PyTorch state_dict that loads without running code"),
        (pickled, "is not a PyTorch state_dict that loads without running code"),
        (evaluator, "is not a torchvision inception_v3 state_dict: 472 keys missing and 40 unexpected (such as"),
        (reshaped, "is not a torchvision inception_v3 state_dict: size mismatch for fc.weight"),
    ]:
        with pytest.raises(GanError) as error:
            load_inception(str(path))
        assert str(error.value).startswith(f"inception_weights={path} ") and message in str(error.value), str(error.value)
