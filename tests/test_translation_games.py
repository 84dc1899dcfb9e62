"""The translation families (CycleGAN, StarGAN): their steps by hand, validation's messages, and real
runs on tiny MNIST-derived domains that resume bit for bit, draw their translation grids, and are
evaluated during training and by gan-eval."""

import json

import pytest
import torch

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games import build_game
from gan_cli.games.cyclegan import CycleGANGame
from gan_cli.games.stargan import with_domain_planes
from gan_cli.games.translation import translate_images, translation_pairs
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.validation import check_train_config
from tests.disk_data import write_idx_dataset
from tests.helpers import assert_same_training_state, compose_train, resume_tiny, run_cli, train_checked

TINY_NETWORKS = ["model.g_width=4", "model.g_blocks=1", "model.d_width=4"]
FAMILIES = {
    "cyclegan": ["model=cyclegan", "loss=lsgan"],
    "stargan": ["model=stargan", "loss=wgan_gp", "train.d_steps=2", "dataset.domains=[plain,invert,colour]"],
}


def tiny_run(root, family: str) -> list[str]:
    """A run of a few steps of `family` on domains of 40 tiny MNIST digits under `root`."""
    return [
        "dataset=mnist_domains", f"dataset.root={root}", "dataset.download=false", *FAMILIES[family], *TINY_NETWORKS,
        "train.batch_size=4", "train.steps=6", "log.every=2", "samples.every=3", "samples.n=4", "checkpoint.every=3",
        "eval.every=3", "eval.n=6", "eval.best=label_preservation", "log.progress_bar=false",
    ]


@pytest.fixture
def digits_root(tmp_path):
    write_idx_dataset(tmp_path / "data", "MNIST", n=40)
    return tmp_path / "data"


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_trains_resumes_bit_identically_and_evaluates(tmp_path, digits_root, family):
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_checked(straight, tiny_run(digits_root, family))
    train_checked(split, tiny_run(digits_root, family) + ["train.steps=3"])
    resume_tiny(split, ["train.steps=6"])
    a, b = load_checkpoint(straight / "checkpoints" / "last.pt"), load_checkpoint(split / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    assert_same_training_state(a, b)  # networks, EMA copies, optimizers, the pools, every data order
    domains = 2 if family == "cyclegan" else 3
    lines = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [3, 6]
    for line in lines:  # every ordered pair, each metric in range
        assert len([key for key in line if key.endswith("/domain_accuracy") and "->" in key]) == domains * (domains - 1)
        assert 0 <= line["mean/label_preservation"] <= 1 and line["mean/cycle_l1"] >= 0
    assert (straight / "samples" / "step_0000006.png").is_file()
    assert (straight / "checkpoints" / "best.pt").is_file()


def test_gan_eval_scores_a_translation_checkpoint(tmp_path, digits_root):
    run = tmp_path / "run"
    train_checked(run, tiny_run(digits_root, "cyclegan") + ["eval.every=null"])
    out = tmp_path / "m.json"
    result = run_cli("gan-eval", f"ckpt={run}", "n=10", f"out={out}", f"data_root={digits_root}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    record = json.loads(out.read_text())
    values = record["values"]
    for pair in ("plain->invert", "invert->plain"):
        assert {"label_preservation", "domain_accuracy", "paired_l1", "paired_agreement", "cycle_l1", "cycle_l1_probe", "fid"} <= {
            key.split("/", 1)[1] for key in values if key.startswith(pair + "/")}
    assert "worst pair by label_preservation" in result.stdout
    refused = run_cli("gan-eval", f"ckpt={run}", "metrics=[fid]", f"data_root={digits_root}", cwd=tmp_path)
    assert refused.returncode != 0 and "drop metrics=" in refused.stderr


def cyclegan_game(identity_weight=0.5, pool_size=3) -> CycleGANGame:
    cfg = compose_train(["dataset=mnist_domains", "model=cyclegan", "loss=lsgan", *TINY_NETWORKS,
                         f"model.identity_weight={identity_weight}", f"model.pool_size={pool_size}"])
    return build_game(cfg, DataShape((1, 28, 28), 2))


def test_cyclegan_translates_with_the_generator_of_each_direction():
    game = cyclegan_game()
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert torch.equal(translate_images(CycleGANGame, game.networks, x, 0, 1), game.networks["G_AB"].eval()(x))
        assert torch.equal(translate_images(CycleGANGame, game.networks, x, 1, 0), game.networks["G_BA"].eval()(x))
    assert translation_pairs(3) == [(0, 1), (0, 2), (1, 0), (1, 2), (2, 0), (2, 1)]


def test_the_pool_shows_d_earlier_fakes_once_it_holds_enough():
    game = cyclegan_game(pool_size=4)
    rng = torch.Generator().manual_seed(0)
    first = torch.full((4, 1, 28, 28), 1.0)
    assert torch.equal(game.pooled(0, first, rng), first)  # nothing stored before: the fresh fakes
    shown = game.pooled(0, torch.full((4, 1, 28, 28), 2.0), rng)
    assert sorted(shown[:, 0, 0, 0].tolist()) == [1.0, 1.0, 2.0, 2.0]  # half the batch swapped for the first fakes


def test_stargan_joins_one_plane_per_domain_to_its_input():
    x = torch.zeros(2, 1, 28, 28)
    joined = with_domain_planes(x, torch.tensor([2, 0]), 3)
    assert joined.shape == (2, 4, 28, 28)
    assert joined[0, 3].eq(1).all() and joined[0, 1:3].eq(0).all() and joined[1, 1].eq(1).all()


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=cyclegan"], "model=cyclegan translates between domains; use dataset=mnist_domains"),
        (["model=cyclegan", "dataset=mnist_domains", "model.downsamplings=3"], "the image size 28 must divide by 2**3"),
        (["model=cyclegan", "dataset=mnist_domains", "model.d_norm=batch"], "model.d_norm='batch' must be instance or none"),
        (["model=stargan", "dataset=mnist_domains", "train.replay_size=8"], "train.replay_size=8 is for the GAN families"),
        (["model=cyclegan", "dataset=mnist_domains", "train.d_steps=2"], "train.d_steps=2"),
        (["model=cyclegan", "dataset=mnist_domains", "eval.best=is"], "eval.best='is': a translation model's evaluations rank by"),
    ],
)
def test_validation_names_what_a_translation_run_cannot_use(overrides, message):
    with pytest.raises(GanError, match=message.replace("*", r"\*").replace("(", r"\(")):
        check_train_config(compose_train(overrides))


def test_cyclegan_needs_exactly_two_domains():
    cfg = compose_train(["model=cyclegan", "dataset=mnist_domains", "dataset.domains=[plain,invert,edge]"])
    with pytest.raises(GanError, match="model=cyclegan translates between exactly 2 domains"):
        build_game(cfg, DataShape((1, 28, 28), 3))


def test_a_stargan_generator_sees_its_target_domain():
    # Constant planes, reflection padded, would be erased by the instance norm after the stem.
    cfg = compose_train(["dataset=mnist_domains", "model=stargan", "loss=wgan_gp", *TINY_NETWORKS])
    game = build_game(cfg, DataShape((1, 28, 28), 3))
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    to_first, to_second = (translate_images(type(game), game.networks, x, 0, target) for target in (1, 2))
    assert (to_first - to_second).abs().mean() > 1e-3
