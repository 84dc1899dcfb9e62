"""D's features as a representation (gan-eval metrics=[d_features]): the 4x4 pooling and concatenation
for the DCGAN and MLP discriminators, the linear probe on synthetic features, the nested labelled
sets, the whole protocol on real MNIST (shrunk), and the refusals of the command."""


import numpy as np
import pytest
import torch

from gan_cli.data.source import DataShape
from gan_cli.metrics import d_features
from gan_cli.metrics.d_features import discriminator_features, labelled_pool, linear_probe, standardised
from gan_cli.models import build_networks
from gan_cli.training.checkpoint import load_checkpoint
from tests.helpers import assert_user_error, compose_train, run_cli, run_clis, train_tiny

MNIST_SHAPE = DataShape((1, 28, 28), 10)


def discriminator(model: str = "dcgan", overrides: list[str] = (), shape: DataShape = MNIST_SHAPE):
    cfg = compose_train([f"model={model}", *overrides])
    return build_networks(cfg.model, shape)[1]


def test_dcgan_features_are_every_conv_layer_max_pooled_to_4x4_and_concatenated():
    d = discriminator()  # the default DCGAN: 64 channels at 14x14, then 128 at 7x7
    images = torch.rand(5, 1, 28, 28) * 2 - 1
    features = discriminator_features(d, images, batch_size=2)
    assert features.shape == (5, 64 * 16 + 128 * 16) and features.dtype == torch.float32
    # the first layer's part is the max over (overlapping) windows of its 14x14 map: check it against D's body
    first = d.body[1](d.body[0](images)).detach()  # conv -> LeakyReLU, (5, 64, 14, 14)
    assert torch.allclose(features[:, :64 * 16].view(5, 64, 4, 4), torch.nn.functional.adaptive_max_pool2d(first, 4))
    assert torch.allclose(features[:, :64 * 16].view(5, 64, 16).amax(2), first.flatten(2).amax(2))  # the whole map's max is kept
    larger = discriminator(shape=DataShape((3, 64, 64)))  # 4 stages: 64, 128, 256, 512 channels at 32, 16, 8, 4
    assert discriminator_features(larger, torch.zeros(2, 3, 64, 64)).shape == (2, (64 + 128 + 256 + 512) * 16)


def test_mlp_features_are_its_hidden_layers_and_a_conditional_d_gets_no_label():
    d = discriminator("mlp", ["model.d_hidden=[24,16]"])
    features = discriminator_features(d, torch.zeros(3, 1, 28, 28))
    assert features.shape == (3, 24 + 16)
    conditional = discriminator("cgan_mlp", ["model.d_hidden=[24]"])
    images = torch.rand(4, 1, 28, 28)
    assert discriminator_features(conditional, images).shape == (4, 24)
    with torch.no_grad():  # label 0 for every image: the same as D's first layer fed one-hot label 0
        expected = conditional.body(conditional.condition(images, torch.zeros(4, dtype=torch.long)))
    assert torch.allclose(discriminator_features(conditional, images), expected)


def synthetic(n: int, seed: int, classes: int = 10, dims: int = 32):
    """Features with one well-separated cluster per class (the same centres for every seed): (n, dims)
    float32 and labels (n,)."""
    centres = np.random.default_rng(0).normal(0, 5, (classes, dims))
    labels = np.arange(n) % classes
    return (centres[labels] + np.random.default_rng(seed).normal(0, 1, (n, dims))).astype(np.float32), labels


def test_the_probe_reaches_100_percent_on_separable_features_and_chance_on_shuffled_labels():
    train, train_labels = synthetic(100, seed=1)
    test, test_labels = synthetic(2000, seed=2)
    train, test = standardised(train, train, test)
    assert linear_probe(train, train_labels, test, test_labels, seed=0) == 1.0
    shuffled = np.random.default_rng(3).permutation(train_labels)
    accuracy = linear_probe(train, shuffled, test, test_labels, seed=0)
    assert 0.02 < accuracy < 0.25  # chance is 0.1; 2000 test points: the spread is about 0.01, plus the fit's luck


def test_labelled_sets_are_nested_and_balanced():
    labels = torch.arange(1000) % 10
    labels[:50] = 3  # an unbalanced class mix
    pool = labelled_pool(labels, per_class=20, size=500, seed=0)
    assert len(pool) == 500 and len(set(pool.tolist())) == 500
    for k in (1, 5, 20):
        assert torch.bincount(labels[pool[: 10 * k]], minlength=10).tolist() == [k] * 10
    assert torch.equal(pool, labelled_pool(labels, per_class=20, size=500, seed=0))  # the seed fixes it
    assert not torch.equal(pool, labelled_pool(labels, per_class=20, size=500, seed=1))
    with pytest.raises(ValueError, match="200 per class asked, and the smallest class has 95 images"):
        labelled_pool(labels, per_class=200, size=500, seed=0)


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dcgan")
    train_tiny(run_dir, ["train.steps=2"])
    return run_dir


def test_the_protocol_on_real_mnist(dcgan_run, mnist_root, monkeypatch):
    """The whole protocol, shrunk (a pool of 500 images, 20 centroids): three feature sets, one accuracy each
    per label count, well above chance even for a barely trained D (random features of images separate digits)."""
    monkeypatch.setattr(d_features, "POOL_SIZE", 500)
    monkeypatch.setattr(d_features, "KMEANS_CENTROIDS", 20)
    checkpoint = load_checkpoint(dcgan_run)
    report = d_features.probe_checkpoint(checkpoint, "ckpt=run", str(mnist_root), [2, 20], 0, torch.device("cpu"), 500)
    assert list(report.accuracies) == [2, 20]
    for accuracies in report.accuracies.values():
        assert set(accuracies) == {"trained", "random_init", "kmeans"}
        assert all(0.3 < accuracy <= 1 for accuracy in accuracies.values()), accuracies
    assert report.accuracies[20]["kmeans"] > report.accuracies[2]["kmeans"]  # more labels, better
    assert report.dims == {"trained": 8 * 16 + 16 * 16, "random_init": 8 * 16 + 16 * 16, "kmeans": 20}
    lines = report.table()
    assert lines[0].split() == ["labels/class", "labelled", "trained", "D", "random-init", "D", "k-means", "pixels"]
    assert lines[1].split()[:2] == ["2", "20"] and lines[2].split()[:2] == ["20", "200"]
    assert lines[1].split()[2] == f"{100 * report.accuracies[2]['trained']:.2f}%"
    assert "all 10000 mnist test images" in lines[-1]
    assert report.record()["accuracy"]["20"] == report.accuracies[20]


def test_the_command_refuses_what_it_cannot_probe(dcgan_run, tmp_path):
    toy = tmp_path / "toy"
    train_tiny(toy, ["dataset=ring_2d", "train.steps=1", "model.input_dropout=0"], model="mlp")
    colour = tmp_path / "colour"
    train_tiny(colour, ["dataset.channels=3", "dataset.image_size=32", "train.steps=1"])
    checkpoint = load_checkpoint(dcgan_run)
    del checkpoint["networks"]["D"]
    torch.save(checkpoint, tmp_path / "no_d.pt")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    cases = [
        ([f"ckpt={tmp_path / 'no_d.pt'}"], f"metrics=[d_features] probes a discriminator's features, and ckpt={tmp_path / 'no_d.pt'} "
         "holds none: give the checkpoint of a GAN run"),
        ([f"ckpt={toy}"], f"the D of ckpt={toy} reads 2 inputs: give the checkpoint of a 28x28 grayscale run"),
        ([f"ckpt={colour}"], f"the D of ckpt={colour} reads 3x32x32 inputs"),
        ([f"ckpt={dcgan_run}", "labels_per_class=[10,0]"], "labels_per_class=[10, 0] must be a list of positive counts"),
        ([f"ckpt={dcgan_run}", "labels_per_class=[6000]", f"data_root={tmp_path / 'none'}"], "needs labelled mnist images under data_root"),
        (["images=x.npz"], "metrics=[d_features] probes a checkpoint's discriminator: give ckpt=<run or .pt>, not images="),
        ([f"ckpt={dcgan_run}", "metrics=[d_features,fid]"], "metrics: d_features probes D and the others score G's images"),
    ]  # fmt: skip
    results = run_clis([("gan-eval", "metrics=[d_features]", *args) for args, _ in cases], cwd=cwd)
    for result, (_, message) in zip(results, cases):
        assert_user_error(result, message)
        assert result.stderr.count("\n") == 1, result.stderr
    assert list(cwd.iterdir()) == []


def test_too_many_labels_per_class_for_the_data_are_refused(dcgan_run, mnist_root, tmp_path):
    result = run_cli("gan-eval", f"ckpt={dcgan_run}", "metrics=[d_features]", "labels_per_class=[6000]", f"data_root={mnist_root}",
                     cwd=tmp_path)  # fmt: skip
    assert_user_error(result, "labels_per_class=[6000]: 6000 per class asked, and the smallest class has 5421 images in mnist's training split")
