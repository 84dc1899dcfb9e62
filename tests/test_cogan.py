"""CoGAN: tied layers that are one tensor for both domains, validation's messages, the pair metrics on
constructed pairs, and a real run on tiny MNIST-derived domains that resumes bit for bit, draws pairs
side by side and is evaluated during training and by gan-eval."""

import json

import pytest
import torch
from PIL import Image

from gan_cli.data.domain_transforms import to_domain
from gan_cli.data.domains import DomainTestSet
from gan_cli.data.mnist import load_mnist
from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games import build_game
from gan_cli.metrics.domain_evaluator import load_domain_evaluator
from gan_cli.metrics.pairs import pair_metrics, real_features
from gan_cli.sampling.files import from_uint8
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.validation import check_train_config
from tests.disk_data import write_idx_dataset
from tests.helpers import assert_same_training_state, compose_train, resume_tiny, run_cli, train_checked

TINY_NETWORKS = ["model.g_width=4", "model.d_width=4", "model.latent_dim=8"]
SHAPE = DataShape((1, 28, 28), 2)


def cogan(shared_layers: int):
    torch.manual_seed(0)
    cfg = compose_train(["dataset=mnist_domains", "model=cogan", *TINY_NETWORKS, f"model.shared_layers={shared_layers}"])
    return build_game(cfg, SHAPE).networks


@pytest.mark.parametrize("shared_layers, b_moves", [(3, True), (1, True), (0, False)])
def test_an_update_for_one_domain_moves_the_other_through_the_shared_layers(shared_layers, b_moves):
    networks = cogan(shared_layers)
    generator, discriminator = networks["G"].eval(), networks["D"].eval()
    z, x = torch.randn(6, 8), torch.rand(6, 1, 28, 28) * 2 - 1
    before_g, before_d = generator.pair(z), [discriminator(x, k).logits for k in range(2)]
    # One SGD step on domain A's outputs alone, for G and for D.
    optimizer = torch.optim.SGD([*generator.parameters(), *discriminator.parameters()], lr=0.1)
    (generator.pair(z)[0].sum() + discriminator(x, 0).logits.sum()).backward()
    optimizer.step()
    after_g, after_d = generator.pair(z), [discriminator(x, k).logits for k in range(2)]
    assert not torch.equal(before_g[0], after_g[0]) and not torch.equal(before_d[0], after_d[0])
    assert (not torch.equal(before_g[1], after_g[1])) == b_moves  # B's output moved only through a shared layer
    assert (not torch.equal(before_d[1], after_d[1])) == b_moves


def test_shared_layers_are_stored_once():
    tied, untied = cogan(3), cogan(0)
    for name in ("G", "D"):
        count = [sum(p.numel() for p in networks[name].parameters()) for networks in (tied, untied)]
        assert count[0] < count[1]
    generator = tied["G"]
    assert len(generator.heads[0]) == 2  # the 3x3 rendering and its tanh: the rest is shared
    assert {id(p) for p in generator.heads[0].parameters()}.isdisjoint(id(p) for p in generator.heads[1].parameters())
    assert generator(torch.randn(3, 8)).shape == (3, 1, 28, 56)  # the pair side by side


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["model=cogan"], "model=cogan learns two domains together; use dataset=mnist_domains"),
        (["model=cogan", "dataset=mnist_domains", "dataset.domains=[plain,edge,invert]"], "learns two domains together"),
        (["model=cogan", "dataset=mnist_domains", "model.shared_layers=4"], "model.shared_layers=4 must be between 0"),
        (["model=cogan", "dataset=mnist_domains", "eval.best=label_preservation"], "a pair generator's evaluations rank by"),
        (["model=cogan", "dataset=mnist_domains", "loss=wgan_gp", "model.d_norm=batch"], "batch norm mixes samples"),
        (["model=cogan", "dataset=mnist_domains", "train.d_steps=2"], "train.d_steps=2"),
    ],
)
def test_validation_names_what_a_cogan_run_cannot_use(overrides, message):
    with pytest.raises(GanError, match=message):
        check_train_config(compose_train(overrides))


@pytest.fixture(scope="module")
def plain_edge(mnist_root):
    images, labels = load_mnist(str(mnist_root), "test", download=False)
    images, labels = images[:300], labels[:300]
    return DomainTestSet(["plain", "edge"], {name: to_domain(images, name) for name in ("plain", "edge")}, labels, paired=True)


def test_true_pairs_score_one_and_unrelated_pairs_the_floor(plain_edge, one_thread):
    evaluator = load_domain_evaluator()
    plain, edge = (from_uint8(plain_edge.images[name]) for name in ("plain", "edge"))
    real = real_features(plain_edge, evaluator)
    true = pair_metrics(plain, edge, ["plain", "edge"], real, evaluator)
    assert true["pixel_agreement"] == 1.0 and true["pixel_l1"] == 0.0
    assert true["pair_agreement"] > 0.97  # the evaluator's own errors on either side
    assert true["pixel_agreement_floor"] < 0.95 and true["pair_agreement_floor"] < 0.2
    unrelated = pair_metrics(plain, edge.roll(1, 0), ["plain", "edge"], real, evaluator)
    assert unrelated["pair_agreement"] < 0.2
    assert abs(unrelated["pixel_agreement"] - unrelated["pixel_agreement_floor"]) < 0.01
    assert true["plain/domain_accuracy"] > 0.97 and true["edge/domain_accuracy"] > 0.97
    assert true["fid"] < 1e-3  # the same 300 test images as the reference


def tiny_run(root) -> list[str]:
    return [
        "dataset=mnist_domains", f"dataset.root={root}", "dataset.download=false", "dataset.domains=[plain,invert]",
        "model=cogan", *TINY_NETWORKS, "train.batch_size=4", "train.steps=6", "log.every=2", "samples.every=3",
        "samples.n=4", "checkpoint.every=3", "eval.every=3", "eval.n=6", "eval.best=pair_agreement", "log.progress_bar=false",
    ]


def test_cogan_trains_resumes_bit_identically_samples_pairs_and_evaluates(tmp_path):
    write_idx_dataset(tmp_path / "data", "MNIST", n=40)
    root = tmp_path / "data"
    straight, split = tmp_path / "straight", tmp_path / "split"
    train_checked(straight, tiny_run(root))
    train_checked(split, tiny_run(root) + ["train.steps=3"])
    resume_tiny(split, ["train.steps=6"])
    a, b = load_checkpoint(straight / "checkpoints" / "last.pt"), load_checkpoint(split / "checkpoints" / "last.pt")
    assert a["step"] == b["step"] == 6
    assert_same_training_state(a, b)
    lines = [json.loads(line) for line in (straight / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [3, 6]
    assert all(0 <= line["pair_agreement"] <= 1 and 0 <= line["pixel_agreement"] <= 1 for line in lines)

    grid = tmp_path / "pairs.png"
    result = run_cli("gan-sample", f"ckpt={straight}", "n=4", "nrow=1", f"out={grid}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    width, height = Image.open(grid).size  # one pair per row: the plain and the inverted digit of one z side by side
    assert (width, height) == (2 + 2 * 28 + 2, 2 + 4 * (28 + 2))  # images 56 wide, grid padding 2

    out = tmp_path / "m.json"
    result = run_cli("gan-eval", f"ckpt={straight}", "n=20", f"out={out}", f"data_root={root}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    values = json.loads(out.read_text())["values"]
    assert {"pair_agreement", "pair_agreement_floor", "pixel_agreement", "pixel_agreement_floor", "plain/fid", "invert/fid"} <= set(values)
    assert "pixel_agreement" in result.stdout
    refused = run_cli("gan-eval", f"ckpt={straight}", "metrics=[fid]", f"data_root={root}", cwd=tmp_path)
    assert refused.returncode != 0 and "drop metrics=" in refused.stderr
