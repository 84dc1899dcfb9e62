"""Fixtures shared by the tests."""

import os
from pathlib import Path

import pytest
import torch

from tests.helpers import save_random_inception, train_tiny


@pytest.fixture(scope="session", autouse=True)
def metrics_cache(tmp_path_factory) -> Path:
    """The evaluation cache of every test (and of the commands they start) is a fresh temporary folder."""
    folder = tmp_path_factory.mktemp("gan_cli_cache")
    os.environ["GAN_CLI_CACHE"] = str(folder)
    return folder


def pytest_configure(config) -> None:
    """GAN_DATA_ROOT made absolute: the README gives it relative to the clone, and many tests start
    commands in temporary folders."""
    if os.environ.get("GAN_DATA_ROOT"):
        os.environ["GAN_DATA_ROOT"] = str(Path(os.environ["GAN_DATA_ROOT"]).resolve())


@pytest.fixture(scope="session")
def mnist_root() -> Path:
    """The real MNIST (torchvision layout) named by GAN_DATA_ROOT; nothing is downloaded in tests."""
    root = os.environ.get("GAN_DATA_ROOT")
    if not root or not (Path(root) / "MNIST" / "raw" / "train-images-idx3-ubyte").exists():
        pytest.skip("real MNIST needed: set GAN_DATA_ROOT to a folder holding MNIST/raw/ (CI uses ../shared/data)")
    return Path(root).resolve()


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One finished TINY run, shared by tests that only read its outputs."""
    run_dir = tmp_path_factory.mktemp("tiny_run")
    train_tiny(run_dir)
    return run_dir


@pytest.fixture(scope="session")
def inception_weights(tmp_path_factory) -> Path:
    """A random inception_v3 state_dict (.pth, 109 MB) for features=inception; nothing is downloaded."""
    return save_random_inception(tmp_path_factory.mktemp("inception") / "inception_v3_random.pth")


@pytest.fixture
def one_thread():
    """Torch computes with one thread during the test: for runs of tiny networks, where a second
    OpenMP thread only waits at barriers (and on a machine shared with other work spins there)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
