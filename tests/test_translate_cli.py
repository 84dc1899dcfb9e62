"""gan-translate: a translation model's checkpoint turns images of one domain into another (grid, .npz,
PNG folder); bad requests are refused in one line, naming the key, before anything is written.

The checkpoints are made by hand from the games' own build_networks (no training: the weights are
their initial ones), in the layout the training loop writes.
"""

import re

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf
from PIL import Image

from gan_cli.data.source import DataShape
from gan_cli.errors import GanError
from gan_cli.games import game_class
from gan_cli.games.cyclegan import CycleGANGame
from gan_cli.games.translation import translate_images
from gan_cli.inference import sampler_from_checkpoint, translator_from_checkpoint
from gan_cli.metrics.image_files import read_images
from gan_cli.sampling.files import from_uint8, to_uint8
from gan_cli.sampling.translations import chosen_domains, translate_requested
from gan_cli.training.checkpoint import FORMAT_VERSION, load_checkpoint, save_checkpoint
from tests.disk_data import write_idx_dataset
from tests.helpers import TINY, compose_train, run_clis, tiny_model

CYCLEGAN = ["model=cyclegan", "model.g_width=4", "model.g_blocks=1", "model.d_width=4"]


def hand_made_run(run_dir, overrides: list[str], shape: DataShape, dataset: dict | None = None) -> dict:
    """<run_dir>/checkpoints/last.pt of the model `overrides` compose, for data of `shape`, with its
    initial weights and EMA copies of its averaged networks that differ from them; returns it."""
    cfg = compose_train(overrides)
    config = OmegaConf.to_container(cfg, resolve=True)
    if dataset is not None:
        config["dataset"] = dataset
    game = game_class(cfg.model)
    torch.manual_seed(0)
    networks = game.build_networks(cfg, shape)
    ema = {name: {key: value + 0.01 if value.is_floating_point() else value for key, value in networks[name].state_dict().items()}
           for name in game.averaged}
    checkpoint = {
        "format_version": FORMAT_VERSION, "config": config, "image_shape": shape.record(), "step": 3,
        "networks": {name: network.state_dict() for name, network in networks.items()}, "ema": ema,
    }
    save_checkpoint(checkpoint, run_dir / "checkpoints" / "last.pt")
    return checkpoint


def mnist_domains(root, domains=("plain", "invert")) -> dict:
    return {"name": "mnist_domains", "root": str(root), "download": False, "domains": list(domains), "seed": 0}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    """A tiny MNIST (40 digits per split) in torchvision's layout."""
    root = tmp_path_factory.mktemp("data")
    write_idx_dataset(root, "MNIST", n=40)
    return root


@pytest.fixture(scope="module")
def grey_run(tmp_path_factory):
    """CycleGAN between plain and invert (1x28x28), trained where its data were not: its stored
    dataset.root does not exist here."""
    run_dir = tmp_path_factory.mktemp("grey")
    hand_made_run(run_dir, CYCLEGAN, DataShape((1, 28, 28), 2), mnist_domains(run_dir / "elsewhere"))
    return run_dir


@pytest.fixture(scope="module")
def colour_run(tmp_path_factory):
    """CycleGAN between plain and colour: 3x28x28, grey digits promoted."""
    run_dir = tmp_path_factory.mktemp("colour")
    hand_made_run(run_dir, CYCLEGAN, DataShape((3, 28, 28), 2), mnist_domains(run_dir / "elsewhere", ("plain", "colour")))
    return run_dir


@pytest.fixture(scope="module")
def gan_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("dcgan")
    hand_made_run(run_dir, TINY + tiny_model("dcgan"), DataShape((1, 28, 28), 0))
    return run_dir


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    """An .npz of 10 grey 28x28 images (uint8 `images` (N, H, W, 1)) and a folder of 5 PNGs of them."""
    folder = tmp_path_factory.mktemp("digits")
    images = torch.randint(0, 256, (10, 28, 28, 1), generator=torch.Generator().manual_seed(0), dtype=torch.uint8).numpy()
    np.savez(folder / "digits.npz", images=images)
    (folder / "pngs").mkdir()
    for i, image in enumerate(images[:5]):
        Image.fromarray(image[..., 0]).save(folder / "pngs" / f"{i}.png")
    return folder


def translate(run_dir, tmp_path, *overrides: str) -> str:
    """gan-translate's work in-process (what the command runs after Hydra), writing into tmp_path."""
    cfg = compose_train([f"ckpt={run_dir}", *overrides], config_name="translate")
    cfg.out = f"{tmp_path}/{cfg.out}"  # not tmp_path / out: a Path drops the trailing / that names a folder
    return translate_requested(cfg)


def test_translator_loads_ema_weights_of_the_averaged_networks_and_names_the_domains(grey_run):
    checkpoint = load_checkpoint(grey_run)
    game, networks, domains = translator_from_checkpoint(checkpoint)
    assert game is CycleGANGame and domains == ["plain", "invert"] and set(networks) == {"G_AB", "G_BA", "D_A", "D_B"}
    for name, network in networks.items():
        stored = checkpoint["ema" if name in ("G_AB", "G_BA") else "networks"][name]
        assert not network.training and all(torch.equal(value, stored[key]) for key, value in network.state_dict().items())
    _, raw, _ = translator_from_checkpoint(checkpoint, use_ema=False)
    assert all(torch.equal(value, checkpoint["networks"]["G_AB"][key]) for key, value in raw["G_AB"].state_dict().items())
    del checkpoint["config"]["dataset"]["domains"]  # dataset=unpaired names none: A and B
    assert translator_from_checkpoint(checkpoint)[2] == ["A", "B"]


def test_png_grid_has_rows_of_inputs_translations_and_reconstructions(grey_run, digits, tmp_path):
    summary = translate(grey_run, tmp_path, f"images={digits / 'digits.npz'}", "to=invert", "n=7", "nrow=4", "out=grid.png")
    assert summary.startswith("7 images of plain translated into invert: a grid") and "EMA generators" in summary
    width, height = Image.open(tmp_path / "grid.png").size
    assert (width, height) == (2 + 4 * 30, 2 + 6 * 30)  # 4 columns; two groups of three rows (28 px + 2 padding)


def test_npz_holds_the_translations_and_their_sources(grey_run, digits, tmp_path):
    translate(grey_run, tmp_path, f"images={digits / 'pngs'}", "to=plain", "out=x.npz")  # from: invert, the other one
    arrays = np.load(tmp_path / "x.npz")
    assert arrays["images"].shape == arrays["source_images"].shape == (5, 28, 28, 1)  # all 5 of the folder (n=64)
    assert arrays["images"].dtype == arrays["source_images"].dtype == np.uint8
    assert np.array_equal(arrays["source_images"], np.load(digits / "digits.npz")["images"][:5])
    game, networks, _ = translator_from_checkpoint(load_checkpoint(grey_run))
    expected = translate_images(game, networks, from_uint8(read_images(digits / "pngs")), 1, 0)  # G_BA
    assert np.array_equal(arrays["images"], to_uint8(expected).permute(0, 2, 3, 1).numpy())


def test_folder_gets_one_png_per_translation_of_the_test_images(grey_run, data_root, tmp_path, monkeypatch):
    """images=test: the stored dataset.root is missing here, $GAN_DATA_ROOT holds the data."""
    monkeypatch.setenv("GAN_DATA_ROOT", str(data_root))
    translate(grey_run, tmp_path, "images=test", "to=invert", "n=6", "out=pngs/")
    images = read_images(tmp_path / "pngs")
    assert sorted(p.name for p in (tmp_path / "pngs").iterdir()) == [f"{i:06d}.png" for i in range(6)]
    assert images.shape == (6, 1, 28, 28)


def test_a_grey_npz_goes_into_a_three_channel_model(colour_run, digits, tmp_path):
    translate(colour_run, tmp_path, f"images={digits / 'digits.npz'}", "to=colour", "n=3", "out=c.npz")
    arrays = np.load(tmp_path / "c.npz")
    assert arrays["images"].shape == arrays["source_images"].shape == (3, 28, 28, 3)
    grey = np.load(digits / "digits.npz")["images"][:3]
    assert np.array_equal(arrays["source_images"], np.repeat(grey, 3, axis=3))


def test_images_test_reads_data_root_and_says_where_it_looked(grey_run, data_root, tmp_path, monkeypatch):
    monkeypatch.delenv("GAN_DATA_ROOT", raising=False)
    translate(grey_run, tmp_path, "images=test", f"data_root={data_root}", "to=invert", "n=2", "out=t.npz")
    assert np.load(tmp_path / "t.npz")["images"].shape == (2, 28, 28, 1)
    with pytest.raises(GanError) as refused:
        translate(grey_run, tmp_path, "images=test", "to=invert", "out=u.npz")
    message = str(refused.value)
    assert message.startswith("images=test reads the test images of the model's dataset (mnist_domains), and cannot (under ")
    assert str(grey_run / "elsewhere") in message and message.endswith("give data_root=<the folder holding its files>, "
                                                                       "or images=<an .npz or a folder of PNGs>")
    assert not (tmp_path / "u.npz").exists()


def test_images_test_of_an_unpaired_model_reads_its_test_folder(tmp_path):
    """dataset=unpaired: domains A and B (its config names none), test images from <path>/testA/."""
    for folder in ("trainA", "trainB", "testA", "testB"):
        (tmp_path / "data" / folder).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((28, 28), 40 * i + (folder == "testA"), np.uint8)).save(tmp_path / "data" / folder / f"{i}.png")
    dataset = {"name": "unpaired", "path": str(tmp_path / "data"), "image_size": 28, "channels": 1, "crop": None, "workers": 0}
    hand_made_run(tmp_path / "run", CYCLEGAN, DataShape((1, 28, 28), 2), dataset)
    assert translate(tmp_path / "run", tmp_path, "to=B", "out=x.npz").startswith("3 images of A translated into B")
    assert np.load(tmp_path / "x.npz")["source_images"][:, 0, 0, 0].tolist() == [1, 41, 81]
    with pytest.raises(GanError, match=re.escape("data_root= replaces dataset.root, and the model's dataset=unpaired has none")):
        translate(tmp_path / "run", tmp_path, "to=B", "data_root=/data", "out=y.npz")


REFUSED = [
    (["to=sepia"], "to=sepia is not a domain of this model; its domains are plain, invert"),
    (["to=invert", "from=edge"], "from=edge is not a domain of this model; its domains are plain, invert"),
    (["from=plain"], "to= is required: the domain to translate into, one of this model's domains (plain, invert)"),
    (["to=invert", "from=invert"], "from=invert and to=invert are the same domain: translate into another one"),
    (["to=invert", "images=DIGITS/rgb.npz"], "images=DIGITS/rgb.npz are 3x28x28 images, and this checkpoint's model "
                                             "translates 1x28x28 images"),
    (["to=invert", "images=DIGITS/small.npz"], "images=DIGITS/small.npz are 1x14x14 images, and this checkpoint's model "
                                               "translates 1x28x28 images"),
    (["to=invert", "images=DIGITS/none.npz"], "does not exist; give a folder of PNG files or an .npz file"),
    (["to=invert", "images=DIGITS/digits.npz", "data_root=/data"], "data_root= is where images=test reads the model's test "
                                                                   "images; images=DIGITS/digits.npz needs none"),
    (["to=invert", "out=grid.jpg", "n=0"], "n=0 must be positive; out=OUT/grid.jpg: gan-translate writes a grid of inputs"),
]


@pytest.mark.parametrize("overrides,message", REFUSED, ids=[" ".join(case[0]) for case in REFUSED])
def test_bad_requests_are_refused_in_one_line_before_anything_is_written(grey_run, digits, tmp_path, overrides, message):
    folder = tmp_path / "digits"
    folder.mkdir()
    np.savez(folder / "digits.npz", images=np.zeros((4, 28, 28, 1), np.uint8))
    np.savez(folder / "rgb.npz", images=np.arange(4 * 28 * 28 * 3).reshape(4, 28, 28, 3).astype(np.uint8))
    np.savez(folder / "small.npz", images=np.zeros((4, 14, 14, 1), np.uint8))
    overrides = [arg.replace("DIGITS", str(folder)) for arg in overrides]
    with pytest.raises(GanError) as refused:
        translate(grey_run, tmp_path / "out", *overrides)
    message = message.replace("DIGITS", str(folder)).replace("OUT", str(tmp_path / "out"))
    assert message in str(refused.value) and "\n" not in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_a_colour_model_names_the_grey_images_it_takes(colour_run, tmp_path):
    np.savez(tmp_path / "two.npz", images=np.zeros((4, 28, 28, 2), np.uint8))
    with pytest.raises(GanError, match=re.escape(
        "are 2x28x28 images, and this checkpoint's model translates 3x28x28 images (or 1x28x28, repeated over its 3 channels)"
    )):
        translate(colour_run, tmp_path / "out", f"images={tmp_path / 'two.npz'}", "to=colour")


def test_from_is_required_beyond_two_domains():
    domains = ["plain", "invert", "edge"]
    cfg = compose_train(["to=edge"], config_name="translate")
    with pytest.raises(GanError, match=re.escape("from= is required: this model translates between 3 domains (plain, invert, "
                                                 "edge); name the domain of the images")):
        chosen_domains(cfg, domains)
    cfg["from"] = "invert"
    assert chosen_domains(cfg, domains) == (1, 2)


def test_latent_and_translation_checkpoints_point_to_each_others_command(grey_run, gan_run):
    with pytest.raises(GanError) as refused:
        sampler_from_checkpoint(load_checkpoint(grey_run))
    assert str(refused.value).startswith("the checkpoint's model (cyclegan) translates images between domains and draws "
                                         "none from latents: use gan-translate")
    with pytest.raises(GanError, match=re.escape("the checkpoint's model (dcgan) draws images from latents and translates "
                                                 "none: use gan-sample")):
        translator_from_checkpoint(load_checkpoint(gan_run))


def test_commands(grey_run, gan_run, digits, tmp_path):
    """The installed commands: a translation written; gan-translate on a GAN and gan-sample on a
    translation model refused in one line with status 1, writing nothing."""
    npz = f"images={digits / 'digits.npz'}"
    results = run_clis([
        ("gan-translate", f"ckpt={grey_run}", npz, "to=invert", "n=4", "out=ok.png"),
        ("gan-translate", f"ckpt={gan_run}", npz, "to=invert", "out=no.png"),
        ("gan-sample", f"ckpt={grey_run}", "out=no.png"),
    ], cwd=tmp_path, env={"OMP_NUM_THREADS": "1"})
    assert results[0].returncode == 0, results[0].stderr
    assert "Wrote 4 images of plain translated into invert: a grid of inputs, translations and reconstructions to ok.png" \
        in results[0].stdout
    assert Image.open(tmp_path / "ok.png").size == (2 + 8 * 30, 2 + 3 * 30)  # nrow=8 columns, one group of three rows
    for result, prog, message in zip(results[1:], ("gan-translate", "gan-sample"), ("use gan-sample", "use gan-translate")):
        assert result.returncode == 1 and result.stderr.startswith(f"{prog}: error: the checkpoint's model")
        assert message in result.stderr and result.stderr.count("\n") == 1
    assert [p.name for p in tmp_path.iterdir()] == ["ok.png"]
