"""Datasets and the device-resident batch source."""

import pytest
import torch

from gan_cli.data import TensorBatchSource
from gan_cli.data.fake import make_fake_images
from gan_cli.data.idx import parse_idx
from gan_cli.data.mnist import load_mnist
from gan_cli.errors import GanError
from tests.disk_data import idx_bytes


def test_idx_round_trip():
    data = torch.randint(0, 256, (3, 4, 5), dtype=torch.uint8)
    assert torch.equal(parse_idx(idx_bytes(data)), data)


@pytest.mark.parametrize(
    "raw,message",
    [
        (b"\x01\x02\x08\x01" + b"\x00" * 8, "not an IDX file"),
        (b"\x00\x00\x0d\x01\x00\x00\x00\x01" + b"\x00" * 4, "not supported"),
        (b"\x00\x00\x08\x03\x00", "truncated IDX header"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x05\x01\x02", "truncated or corrupt"),
    ],
)
def test_idx_errors(raw, message):
    with pytest.raises(GanError, match=message):
        parse_idx(raw, "file.idx")


def test_missing_mnist_names_the_folder_and_files(tmp_path):
    with pytest.raises(GanError) as err:
        load_mnist(str(tmp_path), "train", download=False)
    message = str(err.value)
    assert str(tmp_path / "MNIST" / "raw") in message
    for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        assert name in message
    assert "GAN_DATA_ROOT" in message


def test_real_mnist(mnist_root):
    images, labels = load_mnist(str(mnist_root), "train", download=False)
    assert images.shape == (60000, 1, 28, 28) and images.dtype == torch.uint8
    assert labels[:5].tolist() == [5, 0, 4, 1, 9]
    assert images.float().div(255).mean().item() == pytest.approx(0.1307, abs=1e-4)
    assert torch.bincount(labels).tolist()[:3] == [5923, 6742, 5958]
    test_images, test_labels = load_mnist(str(mnist_root), "test", download=False)
    assert test_images.shape == (10000, 1, 28, 28) and test_labels[:3].tolist() == [7, 2, 1]


@pytest.mark.parametrize("channels,size,classes", [(1, 28, 10), (3, 32, 4), (3, 64, 0)])
def test_fake_images_any_shape(channels, size, classes):
    images, labels = make_fake_images(40, channels, size, classes, seed=1)
    assert images.shape == (40, channels, size, size) and images.dtype == torch.uint8
    assert images.max() > 100  # blobs are bright somewhere
    if classes:
        assert labels.shape == (40,) and 0 <= labels.min() and labels.max() < classes
    else:
        assert labels is None
    again, _ = make_fake_images(40, channels, size, classes, seed=1)
    assert torch.equal(images, again)


def test_fake_classes_differ():
    images, labels = make_fake_images(400, 1, 28, 4, seed=0)
    means = torch.stack([images[labels == k].float().mean(0) for k in range(4)])  # (4, 1, 28, 28)
    assert (means[0] - means[2]).abs().max() > 50


def make_source(n=10, batch=4, seed=0):
    images = torch.arange(n, dtype=torch.uint8).view(n, 1, 1, 1).expand(n, 1, 2, 2).contiguous()
    labels = torch.arange(n)
    return TensorBatchSource(images, labels, 10, batch, torch.device("cpu"), seed)


def test_batches_are_scaled_and_cover_each_epoch():
    source = make_source(n=12, batch=4)
    seen = []
    for _ in range(3):
        x, y = source.next()
        assert x.shape == (4, 1, 2, 2) and x.dtype == torch.float32
        assert torch.allclose(x[:, 0, 0, 0], y.float() / 127.5 - 1)  # pixel value = index
        seen += y.tolist()
    assert sorted(seen) == list(range(12)) and source.epoch == 0
    source.next()
    assert source.epoch == 1


def test_drops_incomplete_last_batch_and_reshuffles():
    source = make_source(n=10, batch=4)
    first = [source.next()[1] for _ in range(2)]
    second = [source.next()[1] for _ in range(2)]  # 2 batches per epoch: this is epoch 1
    assert source.epoch == 1
    assert not torch.equal(torch.cat(first), torch.cat(second))


def test_state_round_trip_continues_the_same_order():
    a = make_source(n=10, batch=3, seed=5)
    for _ in range(4):
        a.next()
    b = make_source(n=10, batch=3, seed=99)
    b.load_state_dict(a.state_dict())
    for _ in range(6):
        assert torch.equal(a.next()[1], b.next()[1])
