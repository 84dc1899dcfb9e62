"""gan-sample mode=arithmetic: the `terms` parser (precedence, brackets, bad input), the averaged and
combined latents, the figure, and the refusals of the command."""

import numpy as np
import pytest
import torch
from PIL import Image

from gan_cli.arithmetic import NEIGHBOURS, NOISE, Combination, TermsError, combined_inputs, neighbours, parse_terms
from gan_cli.errors import GanError
from gan_cli.inference import sampler_from_checkpoint
from gan_cli.sampling.inputs import seeded_inputs
from gan_cli.sampling.requests import check_sample_config, write_requested_samples
from gan_cli.training.checkpoint import load_checkpoint
from tests.helpers import compose_train, run_cli, run_clis, train_tiny


@pytest.mark.parametrize(
    "text,groups,coefficients",
    [
        ("[3,17,22] - [5,9,40] + [1,2,8]", [(3, 17, 22), (5, 9, 40), (1, 2, 8)], [1, -1, 1]),
        ("[1] - [2] * 2", [(1,), (2,)], [1, -2]),  # * before -
        ("([1] - [2]) * 2", [(1,), (2,)], [2, -2]),  # brackets first
        ("2 * [1] - [2] / 4", [(1,), (2,)], [2, -0.25]),
        ("-[1] + -(-[2])", [(1,), (2,)], [-1, 1]),  # unary signs, nested
        ("0.5*(3 - 1)*[ 4 , 5 ]", [(4, 5)], [1]),  # numbers combine before scaling a group; blanks anywhere
        ("[7] - [7]", [(7,), (7,)], [1, -1]),  # each written group is a term of its own
    ],
)
def test_the_parser_follows_precedence_and_brackets(text, groups, coefficients):
    combination = parse_terms(text)
    assert combination.groups == groups
    assert combination.coefficients == pytest.approx(coefficients)


@pytest.mark.parametrize(
    "text,message",
    [
        ("", "it is empty"),
        ("[1,", "expected a grid index at character 4"),
        ("[]", "expected a grid index (0, 1, 2, ...) but found ']' at character 2"),
        ("[1 2]", "expected , or ] in a group at character 4"),
        ("[1] [2]", "expected an operator (+ - * /) before '[' at character 5"),
        ("[1] + 2", "a number cannot be added to a group"),
        ("[1] * [2]", "two groups cannot be multiplied"),
        ("2 / [1]", "nothing can be divided by a group"),
        ("[1] / 0", "division by zero"),
        ("3 - 1", "it is the number 2, not a latent"),
        ("[1.5]", "expected a grid index (0, 1, 2, ...) but found '1.5'"),
        ("[-1]", "expected a grid index (0, 1, 2, ...) but found '-'"),
        ("([1] - [2]", "expected ) at character 11"),
        ("[1] + a", "expected a group [i,j,...], a number or ( but found 'a' at character 7"),
    ],
)
def test_the_parser_refuses_bad_input_saying_what_and_where(text, message):
    with pytest.raises(TermsError) as refused:
        parse_terms(text)
    assert str(refused.value) == message or str(refused.value).startswith(message)


def test_groups_are_averaged_then_combined():
    grid = {"z": torch.randn(10, 4), "c": torch.randn(10, 2), "y": torch.arange(10)}
    averages, result = combined_inputs(grid, Combination([(0, 1, 2), (3, 4)], [1.0, -0.5]))
    assert set(averages) == set(result) == {"z", "c"}  # float inputs only; labels are the caller's
    for name in ("z", "c"):
        assert averages[name].shape == (2, grid[name].shape[1]) and result[name].shape == (1, grid[name].shape[1])
        expected = grid[name][:3].mean(0) - 0.5 * grid[name][3:5].mean(0)
        assert torch.allclose(result[name][0], expected, atol=1e-6)
    around = neighbours(result, NEIGHBOURS, seed=0)
    assert around["z"].shape == (NEIGHBOURS + 1, 4)
    assert torch.equal(around["z"][0], result["z"][0])  # the result itself first
    offsets = around["z"][1:] - result["z"]
    assert offsets.abs().max() <= NOISE and offsets.abs().max() > NOISE / 2  # uniform in [-NOISE, NOISE]
    assert torch.equal(around["c"], result["c"].repeat(NEIGHBOURS + 1, 1))  # the noise goes to z only


@pytest.fixture(scope="module")
def dcgan_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dcgan")
    train_tiny(run_dir, ["train.steps=2"])
    return run_dir


def test_the_figure_shows_the_terms_the_result_and_its_neighbours(dcgan_run, tmp_path):
    result = run_cli(
        "gan-sample", f"ckpt={dcgan_run}", "mode=arithmetic", "n=16", "terms=[3,7,12] - [5,9] + [1,2,8]", "out=sum.png",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "Wrote the latent arithmetic [3,7,12] - [5,9] + [1,2,8] (result and 8 noisy neighbours)" in result.stdout
    picture = np.asarray(Image.open(tmp_path / "sum.png"))
    assert picture.shape[0] > 400 and picture.shape[1] > 800 and picture.std() > 20  # 4 rows of 9 panels, drawn
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sum.png"]


def test_the_terms_index_the_grid_that_mode_sample_draws(dcgan_run, tmp_path):
    """The images of a group in the figure are those of the grid gan-sample numbers: same n, same seed."""
    generator = sampler_from_checkpoint(load_checkpoint(dcgan_run))
    grid = seeded_inputs(generator, 16, seed=3)
    _, result = combined_inputs(grid, parse_terms("[15]"))
    assert torch.equal(result["z"][0], grid["z"][15])
    cfg = compose_train([f"ckpt={dcgan_run}", "mode=arithmetic", "n=16", "seed=3", "terms='[15]'", f"out={tmp_path / 'one.png'}"],
                        config_name="sample")  # fmt: skip
    assert write_requested_samples(generator, cfg).endswith(f"to {tmp_path / 'one.png'}")


REFUSED = [
    (["mode=arithmetic"], "mode=arithmetic needs terms=: groups of indices into the grid of n=64 images"),
    (["mode=arithmetic", "terms='[1,2'"], "terms='[1,2' cannot be read: expected , or ] in a group at character 5; write groups"),
    (["mode=arithmetic", "n=16", "terms='[3,16] - [40]'"], "terms: index 16, 40 is outside the grid of n=16 images (0 to 15); "
     "number the grid with gan-sample ckpt=<checkpoint> n=16 seed=0 out=grid.png, or raise n"),
    (["terms='[1]'"], "terms= goes with mode=arithmetic (mode=sample would ignore it): drop it"),
    (["mode=arithmetic", "terms='[1]'", "out=sum.gif"], "out=sum.gif: mode=arithmetic writes a figure of the terms"),
    (["mode=arithmetic", "terms='[1]'", "labels=all"], "labels=all (a row per class) is for mode=sample; mode=arithmetic takes label=<k>"),
]


@pytest.mark.parametrize("overrides,message", REFUSED, ids=[" ".join(case[0]) for case in REFUSED])
def test_bad_requests_are_refused_before_the_checkpoint_is_read(overrides, message):
    with pytest.raises(GanError) as refused:
        check_sample_config(compose_train(overrides, config_name="sample"))
    assert message in str(refused.value) and "\n" not in str(refused.value)


def test_the_command_refuses_with_one_line_and_writes_nothing(dcgan_run, tmp_path):
    cgan = tmp_path / "cgan"
    train_tiny(cgan, ["train.steps=1"], model="cgan")
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    commands = [
        ("gan-sample", f"ckpt={dcgan_run}", "mode=arithmetic", "n=8", "terms=[1] + [9]"),
        ("gan-sample", f"ckpt={dcgan_run}", "mode=arithmetic", "terms=[1] * [2]"),
        ("gan-sample", f"ckpt={cgan}", "mode=arithmetic", "terms=[1] - [2]"),
    ]
    messages = [
        "terms: index 9 is outside the grid of n=8 images (0 to 7)",
        "terms='[1] * [2]' cannot be read: two groups cannot be multiplied",
        "mode=arithmetic on a conditional model needs label=<k>",
    ]
    for result, message in zip(run_clis(commands, cwd=cwd), messages):
        assert result.returncode == 1 and result.stderr.startswith("gan-sample: error: ")
        assert message in result.stderr and result.stderr.count("\n") == 1, result.stderr
    assert list(cwd.iterdir()) == []
