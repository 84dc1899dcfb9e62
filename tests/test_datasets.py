"""The dataset loaders on tiny data in the real on-disk formats: shapes, value ranges, labels, and
the messages for missing or broken files. Nothing is downloaded."""

import logging
import os
import pickle

from functools import partial

import numpy as np
import pytest
import torch
from PIL import Image

from gan_cli.data import build_batch_source
from gan_cli.data.cifar10 import load_cifar10, read_batch
from gan_cli.data.image_files import StreamedImages, decode
from gan_cli.data.mnist import load_mnist
from gan_cli.data.streamed import StreamedBatchSource
from gan_cli.data.source import TensorBatchSource
from gan_cli.errors import GanError
from tests.disk_data import write_celeba, write_cifar10, write_idx_dataset, write_image, write_image_folder
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.loop import training_loop
from tests.helpers import compose_train, resume_tiny, tiny_model

CPU = torch.device("cpu")


def source_for(overrides: list[str], batch_size: int = 4, seed: int = 0):
    return build_batch_source(compose_train(overrides).dataset, batch_size, CPU, seed)


def assert_in_range(x: torch.Tensor) -> None:
    assert x.dtype == torch.float32 and x.min() >= -1 and x.max() <= 1


# --- Fashion-MNIST: the MNIST loader, another folder ---------------------------------------------


def test_fashion_mnist_reads_its_idx_files(tmp_path):
    images, labels = write_idx_dataset(tmp_path, "FashionMNIST", n=30)
    loaded, loaded_labels = load_mnist(str(tmp_path), "train", download=False, dataset="fashion_mnist")
    assert loaded.shape == (30, 1, 28, 28) and loaded.dtype == torch.uint8
    assert torch.equal(loaded[:, 0], images) and loaded_labels.tolist() == labels.long().tolist()
    source = source_for(["dataset=fashion_mnist", f"dataset.root={tmp_path}"])
    x, y = source.next()
    assert x.shape == (4, 1, 28, 28) and y.shape == (4,) and source.shape.num_classes == 10
    assert_in_range(x)


def test_missing_fashion_mnist_names_its_folder(tmp_path):
    write_idx_dataset(tmp_path, "MNIST")  # MNIST is there, Fashion-MNIST is not
    with pytest.raises(GanError) as err:
        load_mnist(str(tmp_path), "train", download=False, dataset="fashion_mnist")
    assert f"FashionMNIST not found: {tmp_path / 'FashionMNIST' / 'raw'} does not hold" in str(err.value)
    assert "train-images-idx3-ubyte" in str(err.value)


# --- CIFAR-10: pickled batches, read without running what a file names ----------------------------


def test_cifar10_batches_become_images_in_rgb_plane_order(tmp_path, caplog):
    written = write_cifar10(tmp_path, per_batch=6)
    images, labels, class_names = load_cifar10(str(tmp_path), "train", download=False)
    assert images.shape == (30, 3, 32, 32) and images.dtype == torch.uint8 and torch.equal(images, written)
    assert (images[:, 0] == 200).all()  # the red plane comes first
    assert images[7, 1, 0, 0].item() == 11  # batch 2 (b=1), image 1: green = 10 * 1 + 1
    assert (images[:, 2, :16] == 50).all() and (images[:, 2, 16:] == 0).all()  # rows in order
    assert labels[:6].tolist() == [0, 1, 2, 3, 4, 5] and labels[6:8].tolist() == [1, 2]
    assert class_names[:3] == ["airplane", "automobile", "bird"]
    test_images, _, _ = load_cifar10(str(tmp_path), "test", download=False)
    assert test_images.shape == (6, 3, 32, 32)
    with caplog.at_level(logging.INFO):
        x, y = source_for(["dataset=cifar10", f"dataset.root={tmp_path}"]).next()
    assert x.shape == (4, 3, 32, 32) and y.dtype == torch.int64
    assert_in_range(x)
    assert any("Classes: 0 airplane, 1 automobile" in r.message for r in caplog.records)


def test_a_batch_that_names_other_code_is_refused_before_it_runs(tmp_path):
    write_cifar10(tmp_path)
    marker = tmp_path / "ran"

    class Payload:  # unpickling this calls os.system(...): a tampered batch
        def __reduce__(self):
            import os

            return os.system, (f"touch {marker}",)

    (tmp_path / "cifar-10-batches-py" / "data_batch_3").write_bytes(pickle.dumps({b"data": Payload()}, protocol=2))
    with pytest.raises(GanError, match=r"data_batch_3 is not a CIFAR-10 batch \(it names posix.system"):
        load_cifar10(str(tmp_path), "train", download=False)
    assert not marker.exists()


def test_cifar10_errors_name_the_files(tmp_path):
    with pytest.raises(GanError) as err:
        load_cifar10(str(tmp_path), "train", download=False)
    assert f"CIFAR-10 not found: {tmp_path / 'cifar-10-batches-py'} lacks data_batch_1, data_batch_2" in str(err.value)
    write_cifar10(tmp_path)
    batch = tmp_path / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:100])
    with pytest.raises(GanError, match="data_batch_2 is not a CIFAR-10 batch"):
        load_cifar10(str(tmp_path), "train", download=False)
    batch.write_bytes(pickle.dumps({b"data": [1, 2], b"labels": [0]}, protocol=2))
    with pytest.raises(GanError, match=r"`data` should be a uint8 array of shape \(N, 3072\), found list"):
        read_batch(batch) and load_cifar10(str(tmp_path), "train", download=False)


# --- CelebA: the image folder and its text files -----------------------------------------------------


def test_celeba_split_crop_and_attribute_labels(tmp_path):
    write_celeba(tmp_path, n=9)
    base = ["dataset=celeba", f"dataset.root={tmp_path}", "dataset.image_size=16", "dataset.workers=0"]
    source = source_for(base + ["dataset.attribute=Smiling"], batch_size=3)
    assert isinstance(source, TensorBatchSource) and len(source) == 3  # images 1, 4, 7 are partition 0
    assert source.shape.sample_shape == (3, 16, 16) and source.shape.num_classes == 2
    assert sorted(source.labels.tolist()) == [0, 1, 1]  # images 0, 3, 6 (0-based): even ones smile
    x, _ = source.next()
    assert_in_range(x)
    # The default crop (140x140, centred) holds only the bright face: no dark frame in the image.
    assert x[:, 0].min() > 0.4  # the face is 230 (0.8); the dark frame 20 (-0.84)
    wide = source_for(base + ["dataset.crop=null", "dataset.split=all"], batch_size=9)
    assert len(wide) == 9 and wide.shape.num_classes == 0 and wide.labels is None
    assert wide.next()[0][:, 0].min() < -0.5  # the largest square (178x178) reaches the dark frame


def test_celeba_errors(tmp_path):
    with pytest.raises(GanError) as err:
        source_for(["dataset=celeba", f"dataset.root={tmp_path}", "dataset.download=false"])
    assert f"CelebA not found: {tmp_path / 'celeba'} lacks img_align_celeba, list_eval_partition.txt" in str(err.value)
    write_celeba(tmp_path)
    with pytest.raises(GanError, match="dataset.attribute='Smile' is not a CelebA attribute; use one of 5_o_Clock_Shadow"):
        source_for(["dataset=celeba", f"dataset.root={tmp_path}", "dataset.attribute=Smile"])


# --- an image folder: classes from sub-folders, broken files skipped, in memory or streamed -----------


def test_image_folder_in_memory_skips_broken_files_by_name(tmp_path, caplog):
    folder = write_image_folder(tmp_path / "pets")
    with caplog.at_level(logging.INFO):
        source = source_for(["dataset=image_folder", f"dataset.path={folder}", "dataset.image_size=8", "dataset.workers=0"])
    assert isinstance(source, TensorBatchSource) and len(source) == 8  # 9 image files, one broken; notes.txt ignored
    assert source.shape.sample_shape == (3, 8, 8) and source.shape.num_classes == 2
    assert any(f"skipping {folder / 'dogs' / 'broken.png'}" in r.message for r in caplog.records)
    assert any("Classes: 0 cats, 1 dogs" in r.message for r in caplog.records)
    x, y = source.next()
    assert_in_range(x)
    red = x[:, 0].mean(dim=(1, 2)) > 0.9  # cats are red, dogs blue: labels follow the folders
    assert torch.equal(red, y == 0)


def test_image_folder_grayscale_and_unlabelled(tmp_path):
    write_image(tmp_path / "a.png", (50, 20), (255, 255, 255))
    write_image(tmp_path / "sub" / "b.jpg", (20, 50), (0, 0, 0))  # beside a top-level image: no labels
    source = source_for(["dataset=image_folder", f"dataset.path={tmp_path}", "dataset.channels=1",
                         "dataset.image_size=28", "dataset.workers=0"], batch_size=2)
    assert source.shape.sample_shape == (1, 28, 28) and source.shape.num_classes == 0
    x, y = source.next()
    assert y is None and sorted(x.mean(dim=(1, 2, 3)).round().tolist()) == [-1.0, 1.0]


@pytest.mark.parametrize("workers", [0, 2])
def test_image_folder_streams_when_over_budget_and_resumes_exactly(tmp_path, workers):
    folder = write_image_folder(tmp_path / "pets", per_class=5)
    overrides = ["dataset=image_folder", f"dataset.path={folder}", "dataset.image_size=8",
                 f"dataset.workers={workers}", "dataset.memory_budget_mb=0"]
    source = source_for(overrides, batch_size=3, seed=4)
    assert isinstance(source, StreamedBatchSource) and len(source) == 10 and source.shape.num_classes == 2
    in_memory = source_for(overrides[:-1], batch_size=3)
    first = [source.next() for _ in range(5)]  # crosses an epoch (3 batches of 3 per epoch)
    x, y = first[0]
    assert x.shape == (3, 3, 8, 8) and y.shape == (3,) and source.epoch == 1
    assert_in_range(x)
    for x, y in first:  # each streamed image is one of the folder's, with its own label
        matches = (in_memory.samples.float().div(127.5).sub(1)[None] - x[:, None]).abs().amax(dim=(2, 3, 4)) < 1e-6
        assert matches.any(dim=1).all() and torch.equal(in_memory.labels[matches.float().argmax(1)], y)
    state = source.state_dict()
    expected = [source.next() for _ in range(4)]
    resumed = source_for(overrides, batch_size=3, seed=99)
    resumed.load_state_dict(state)
    for (x, y), (x2, y2) in zip(expected, (resumed.next() for _ in range(4))):
        assert torch.equal(x, x2) and torch.equal(y, y2)


@pytest.mark.parametrize("budget", ["4096", "0"])  # decoded into memory, streamed
def test_workers_are_capped_at_the_cpus_this_process_may_use(tmp_path, monkeypatch, caplog, recwarn, budget):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0})  # a machine with one CPU for us
    folder = write_image_folder(tmp_path / "pets")
    with caplog.at_level(logging.INFO):
        source = source_for(["dataset=image_folder", f"dataset.path={folder}", "dataset.image_size=8",
                             "dataset.workers=2", f"dataset.memory_budget_mb={budget}"])
        source.next()
    capped = [r.message for r in caplog.records if "dataset.workers=" in r.message]
    assert capped == ["dataset.workers=2 capped at 1, the number of CPUs this process may use"]
    assert not [w for w in recwarn if "worker" in str(w.message)]  # torch's warning about too many workers
    if isinstance(source, StreamedBatchSource):
        assert source.loader.num_workers == 1


def test_a_file_broken_after_its_header_is_replaced_while_streaming(tmp_path, caplog):
    good, bad = tmp_path / "good.png", tmp_path / "bad.jpg"
    write_image(good, (10, 10), (255, 255, 255))
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (30, 30, 3), dtype=np.uint8)).save(bad)
    bad.write_bytes(bad.read_bytes()[:300])  # the header survives, the pixels do not
    images = StreamedImages([bad, good], partial(decode, image_size=4, channels=3))
    with caplog.at_level(logging.WARNING):
        image, source = images[0]
    assert source == 1 and image.float().mean() == 255
    assert any(f"skipping {bad}: cannot decode it" in r.message for r in caplog.records)


def test_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(GanError, match="dataset=image_folder needs dataset.path="):
        source_for(["dataset=image_folder"])
    with pytest.raises(GanError, match=f"dataset.path={tmp_path / 'nowhere'}: .* is not a folder \\(it does not exist\\)"):
        source_for(["dataset=image_folder", f"dataset.path={tmp_path / 'nowhere'}"])
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "readme.txt").write_text("no images here")
    with pytest.raises(GanError, match=f"{tmp_path / 'empty'} holds no image files"):
        source_for(["dataset=image_folder", f"dataset.path={tmp_path / 'empty'}"])
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "a.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(GanError, match=f"{tmp_path / 'junk'} holds no readable image: all 1 files failed"):
        source_for(["dataset=image_folder", f"dataset.path={tmp_path / 'junk'}", "dataset.workers=0"])


# --- Stacked MNIST -----------------------------------------------------------------------------------


def test_stacked_mnist_stacks_three_digits_with_their_triple_as_label(tmp_path):
    images, labels = write_idx_dataset(tmp_path, "MNIST", n=20)
    overrides = ["dataset=stacked_mnist", f"dataset.root={tmp_path}", "dataset.num_samples=50"]
    source = source_for(overrides)
    assert source.samples.shape == (50, 3, 28, 28) and source.shape.num_classes == 1000
    for stack, label in zip(source.samples[:10], source.labels[:10].tolist()):
        digits = [label // 100, label // 10 % 10, label % 10]
        for channel, digit in zip(stack, digits):  # each channel is an MNIST image of its digit
            match = (images == channel).all(dim=(1, 2))
            assert match.any() and (labels[match] == digit).all()
    again = source_for(overrides)
    assert torch.equal(again.samples, source.samples)  # fixed by dataset.seed
    other = source_for(overrides + ["dataset.seed=1"])
    assert not torch.equal(other.samples, source.samples)


def test_a_run_on_a_streamed_folder_resumes_bit_identically(tmp_path):
    folder = write_image_folder(tmp_path / "pets", per_class=6)  # 12 readable images: 3 batches of 4 per epoch
    overrides = [
        "dataset=image_folder", f"dataset.path={folder}", "dataset.image_size=28", "dataset.workers=0",
        "dataset.memory_budget_mb=0", "train.batch_size=4", "samples.every=3", "samples.n=4", "checkpoint.every=3",
        "log.every=3", "log.progress_bar=false", *tiny_model("cgan"),
    ]
    training_loop(compose_train(overrides + ["train.steps=6"]), tmp_path / "straight", {"overrides": overrides + ["train.steps=6"]})
    training_loop(compose_train(overrides + ["train.steps=3"]), tmp_path / "resumed", {"overrides": overrides + ["train.steps=3"]})
    resume_tiny(tmp_path / "resumed", ["train.steps=6"])
    a, b = (load_checkpoint(tmp_path / run) for run in ("straight", "resumed"))
    assert a["step"] == b["step"] == 6 and a["data"]["epoch"] == 1
    assert torch.equal(a["data"]["order"], b["data"]["order"])
    for name in a["networks"]["G"]:
        assert torch.equal(a["networks"]["G"][name], b["networks"]["G"][name]), name
