"""Every config option composes; typos and wrong types fail at compose time, naming the key."""

import re
from pathlib import Path

import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf

from gan_cli.data import is_vector_dataset
from gan_cli.errors import GanError
from gan_cli.validation import check_train_config
from tests.helpers import compose_train

CONFIGS = Path(__file__).parents[1] / "configs"


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONFIGS / group).glob("*.yaml"))


@pytest.mark.parametrize(
    "group,option",
    [(g, o) for g in ("dataset", "model", "loss", "optimizer", "experiment", "debug") for o in options(g)],
)
def test_every_option_composes_and_passes_validation(group, option):
    toy = group == "dataset" and is_vector_dataset(option)  # points need a fully-connected model
    translation = group == "model" and option in ("cyclegan", "stargan", "cogan")  # they need domains
    cfg = compose_train([f"{group}={option}"] + (["model=mlp"] if toy else []) + (["dataset=mnist_domains"] if translation else []))
    check_train_config(cfg)
    OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)  # no ??? left anywhere


def test_default_is_dcgan_on_mnist_with_the_paper_optimizer_at_a_higher_rate():
    cfg = compose_train()
    assert (cfg.dataset.name, cfg.model.name, cfg.loss.name) == ("mnist", "dcgan", "nonsaturating")
    assert cfg.optimizer.generator.lr == cfg.optimizer.discriminator.lr == 1e-3
    assert list(cfg.optimizer.generator.betas) == [0.5, 0.999]
    for paper in (["optimizer=adam"], ["experiment=dcgan_mnist"]):  # the DCGAN paper's rate
        cfg = compose_train(paper)
        assert cfg.optimizer.generator.lr == cfg.optimizer.discriminator.lr == 2e-4


def test_shared_and_separate_learning_rates():
    cfg = compose_train(["optimizer.lr=1e-4"])
    assert cfg.optimizer.generator.lr == cfg.optimizer.discriminator.lr == 1e-4
    cfg = compose_train(["optimizer.discriminator.lr=4e-4"])
    assert (cfg.optimizer.generator.lr, cfg.optimizer.discriminator.lr) == (1e-3, 4e-4)


def test_data_root_defaults_to_environment(monkeypatch):
    monkeypatch.setenv("GAN_DATA_ROOT", "/some/where")
    assert compose_train().dataset.root == "/some/where"
    monkeypatch.delenv("GAN_DATA_ROOT")
    assert compose_train().dataset.root == "./data"


def test_misspelled_group_option_lists_the_available_ones():
    with pytest.raises(MissingConfigException, match="model/dcgann") as err:
        compose_train(["model=dcgann"])
    assert "dcgan" in str(err.value)


@pytest.mark.parametrize(
    "override,message",
    [
        ("optimizer.lr=abc", "optimizer.lr=abc"),
        ("train.batch_size=1.5", "train.batch_size"),
        ("model.g_widht=32", "model.g_widht"),
        ("dataset.rot=/data", "dataset.rot"),
        ("eval.every=often", "eval.every"),
    ],
)
def test_wrong_type_or_unknown_key_fails_at_compose_time(override, message):
    with pytest.raises(ConfigCompositionException, match=message):
        compose_train([override])


@pytest.mark.parametrize(
    "override,message",
    [
        ("train.batch_size=0", "train.batch_size=0 must be positive"),
        ("train.d_steps=-1", "train.d_steps=-1 must be positive"),
        ("optimizer.generator.lr=0", "optimizer.generator.lr=0.0 must be positive"),
        ("train.steps=0", "train.steps=0 must be positive"),
        ("train.ema_decay=1.5", "train.ema_decay=1.5 must be in [0, 1)"),
        ("train.ema_decay=-0.1", "train.ema_decay=-0.1 must be in [0, 1)"),
        ("train.ema_decay=1", "train.ema_decay=1.0 must be in [0, 1)"),
        ("train.precision=fp8", "train.precision='fp8' must be one of"),
        ("dataset=fake dataset.image_size=30", "dataset.image_size=30"),
        ("eval.every=0", "eval.every=0 must be positive"),
        ("eval.n=5", "eval.n=5 must be 10 to 10000"),
        ("eval.metrics=[fid,lpips]", "eval.metrics: 'lpips' is not a metric"),
        ("eval.best=recall", "eval.best='recall' is not a value of eval.metrics="),
        ("dataset=fake dataset.image_size=0", "dataset.image_size=0 must be positive"),
        ("optimizer.lr=0", "optimizer.lr=0.0 must be positive"),
        ("optimizer.lr=-1e-4", "optimizer.lr=-0.0001 must be positive"),
        ("optimizer.lr=nan", "optimizer.lr=nan must be positive and finite"),
        ("optimizer.discriminator.lr=inf", "optimizer.discriminator.lr=inf must be positive and finite"),
        ("train.epochs=inf", "train.epochs=inf must be positive and finite"),
        ("train.epochs=0", "train.epochs=0.0 must be positive"),
        ("model.latent_dim=0", "model.latent_dim=0 must be positive"),
        ("samples.n=0", "samples.n=0 must be positive"),
        ("train.on_nan=ignore", "train.on_nan='ignore' must be one of stop, skip"),
        ("train.max_skipped_steps=-1", "train.max_skipped_steps=-1 must not be negative"),
    ],
)
def test_values_that_cannot_work_are_named(override, message):
    cfg = compose_train(override.split())
    with pytest.raises(GanError, match=re.escape(message)):
        check_train_config(cfg)


def test_every_problem_is_named_at_once():
    cfg = compose_train(["train.batch_size=0", "train.ema_decay=2", "train.on_nan=maybe"])
    with pytest.raises(GanError) as err:
        check_train_config(cfg)
    for key in ("train.batch_size=0", "train.ema_decay=2.0", "train.on_nan='maybe'"):
        assert key in str(err.value)
