"""Datasets of several domains: MNIST's derived domains (each transform on hand-made images, the
split, the paired test set), unpaired image folders, CelebA's attributes as domains, the
DomainBatchSource (its streams, exact resume, sharing under DDP), and the messages for bad keys.
Tiny data in the real on-disk formats; nothing is downloaded."""

import io
import json
import logging
import re

import pytest
import torch

from gan_cli.data import build_batch_source, check_dataset_files
from gan_cli.data.domain_transforms import (
    COLOUR_BACKGROUND, COLOUR_FOREGROUND, MIN_COLOUR_DISTANCE, TRANSFORMS, to_domain
)
from gan_cli.data.domains import DomainBatchSource, domain_test_set, split_indices
from gan_cli.data.mnist import load_mnist
from gan_cli.errors import GanError
from gan_cli.training.checkpoint import load_checkpoint
from gan_cli.training.distributed import BatchShare
from gan_cli.training.loop import training_loop
from gan_cli.validation import check_train_config
from gan_cli.data.celeba import celeba_domain_files
from gan_cli.sampling.translations import translate_requested
from tests.disk_data import write_celeba, write_idx_dataset, write_image
from tests.helpers import assert_same_training_state, compose_train, resume_tiny, tiny_model

CPU = torch.device("cpu")


def digits(*pixels: tuple[int, int], value: int = 255) -> torch.Tensor:
    """One hand-made 28x28 digit, uint8 (1, 1, 28, 28): `value` at the given (row, column) pixels."""
    x = torch.zeros(1, 1, 28, 28, dtype=torch.uint8)
    for row, column in pixels:
        x[0, 0, row, column] = value
    return x


def square(top: int, left: int, side: int) -> list[tuple[int, int]]:
    return [(top + i, left + j) for i in range(side) for j in range(side)]


def lit(x: torch.Tensor) -> set[tuple[int, int]]:
    """The (row, column) pixels of a (1, 1, 28, 28) image that are not 0."""
    return {tuple(p) for p in x[0, 0].nonzero().tolist()}


# --- the transforms, on hand-made images -------------------------------------------------------------


def test_edge_is_the_ring_just_outside_a_square_and_thick_the_grown_square():
    x = digits(*square(12, 12, 3))
    ring = set(square(11, 11, 5)) - set(square(12, 12, 3))
    assert lit(TRANSFORMS["edge"](x)) == ring and len(ring) == 16
    assert (TRANSFORMS["edge"](x)[0, 0, 11, 11] == 255).item()
    assert lit(TRANSFORMS["thick"](x)) == set(square(11, 11, 5))
    assert torch.equal(TRANSFORMS["plain"](x), x)


def test_invert_and_rot90_of_an_l_shape():
    l_shape = [(r, 5) for r in range(5, 16)] + [(15, c) for c in range(6, 13)]
    x = digits(*l_shape)
    inverted = TRANSFORMS["invert"](x)
    assert inverted[0, 0, 10, 5].item() == 0 and inverted[0, 0, 0, 0].item() == 255 and len(lit(inverted)) == 784 - 18
    # a quarter turn counter-clockwise: (row, column) -> (27 - column, row); the top-right corner goes top-left
    assert lit(TRANSFORMS["rot90"](x)) == {(27 - c, r) for r, c in l_shape}
    assert lit(TRANSFORMS["rot90"](digits((0, 27)))) == {(0, 0)}


def test_thin_erodes_a_thick_stroke_and_keeps_a_one_pixel_line_whole():
    assert lit(TRANSFORMS["thin"](digits(*square(10, 10, 3)))) == {(11, 11)}  # 3x3 -> its centre
    assert lit(TRANSFORMS["thin"](digits(*square(10, 10, 5)))) == set(square(11, 11, 3))
    line = [(8, c) for c in range(4, 20)]  # erosion would erase it: it stays as it is
    assert lit(TRANSFORMS["thin"](digits(*line))) == set(line)


def test_colour_paints_ink_and_background_and_grey_domains_are_promoted():
    x = digits((3, 4)) + digits((3, 5), value=128)
    painted = TRANSFORMS["colour"](x)
    assert painted.shape == (1, 3, 28, 28) and painted.dtype == torch.uint8
    assert painted[0, :, 3, 4].tolist() == list(COLOUR_FOREGROUND)
    assert painted[0, :, 0, 0].tolist() == list(COLOUR_BACKGROUND)
    halfway = [round(b + 128 / 255 * (f - b)) for f, b in zip(COLOUR_FOREGROUND, COLOUR_BACKGROUND)]
    assert painted[0, :, 3, 5].tolist() == halfway
    promoted = to_domain(x, "invert", channels=3)
    assert promoted.shape == (1, 3, 28, 28) and all(torch.equal(promoted[:, c], 255 - x[:, 0]) for c in range(3))


def test_colour_random_is_legible_reproducible_and_varies_with_the_seed():
    x = digits(*square(10, 10, 4)).expand(50, -1, -1, -1)
    a, again, other = (TRANSFORMS["colour_random"](x, seed) for seed in (3, 3, 4))
    assert a.shape == (50, 3, 28, 28) and torch.equal(a, again) and not torch.equal(a, other)
    ink, background = a[:, :, 11, 11].float(), a[:, :, 0, 0].float()  # (50, 3) each
    assert ((ink - background).norm(dim=1) >= MIN_COLOUR_DISTANCE).all()
    assert len({tuple(c) for c in ink.tolist()}) > 40  # a pair of colours per image


# --- MNIST's domains: the split, the training parts, the paired test set ------------------------------


def test_the_split_is_disjoint_equal_and_fixed_by_its_seed():
    parts = split_indices(100, 3, seed=5)
    assert parts.shape == (3, 33) and len(set(parts.flatten().tolist())) == 99
    assert torch.equal(parts, split_indices(100, 3, seed=5)) and not torch.equal(parts, split_indices(100, 3, seed=6))


def mnist_domains(root, *overrides: str) -> list[str]:
    return ["dataset=mnist_domains", f"dataset.root={root}", "dataset.download=false", *overrides]


def test_each_domain_trains_on_its_own_transformed_part(tmp_path):
    write_idx_dataset(tmp_path, "MNIST", n=40)
    images, _ = load_mnist(str(tmp_path), "train", download=False)
    cfg = compose_train(mnist_domains(tmp_path, "dataset.domains=[plain,edge,colour]", "dataset.seed=2")).dataset
    source = build_batch_source(cfg, 4, CPU, seed=0)
    assert isinstance(source, DomainBatchSource) and source.domains == ["plain", "edge", "colour"]
    assert len(source) == 39 and source.shape.sample_shape == (3, 28, 28) and source.shape.num_classes == 3
    for k, (index, name) in enumerate(zip(split_indices(40, 3, seed=2), source.domains)):
        expected = to_domain(images[index], name, channels=3)  # the part the seed gives domain k
        assert torch.equal(source.streams[k].samples, expected), name
        x, y = source.next_from(k)
        assert y is None and x.shape == (4, 3, 28, 28)
        scaled = expected.float().div(127.5).sub(1)
        assert all((scaled == row).all(dim=(1, 2, 3)).any() for row in x)  # each image is one of domain k's


def test_the_test_set_holds_every_test_digit_in_every_domain(tmp_path):
    write_idx_dataset(tmp_path, "MNIST", n=30)
    test_images, test_labels = load_mnist(str(tmp_path), "test", download=False)
    cfg = compose_train(mnist_domains(tmp_path, "dataset.domains=[invert,thick]")).dataset
    test = domain_test_set(cfg)
    assert test.paired and test.domains == ["invert", "thick"] and torch.equal(test.labels, test_labels)
    assert torch.equal(test.images["invert"], 255 - test_images)
    assert torch.equal(test.images["thick"], TRANSFORMS["thick"](test_images))
    with pytest.raises(GanError, match="dataset=mnist has no domains to translate between; use dataset=mnist_domains"):
        domain_test_set(compose_train(["dataset=mnist"]).dataset)


def domain_source(tmp_path, batch_size: int = 4, seed: int = 0) -> DomainBatchSource:
    """plain and invert over 40 tiny digits (every pixel below 80): plain images are all below 0 in
    [-1, 1], inverted ones above."""
    if not (tmp_path / "MNIST").exists():
        write_idx_dataset(tmp_path, "MNIST", n=40)
    return build_batch_source(compose_train(mnist_domains(tmp_path)).dataset, batch_size, CPU, seed)


def test_pooled_batches_are_labelled_by_domain_and_streams_stay_in_theirs(tmp_path):
    source = domain_source(tmp_path)
    assert len(source) == 40 and source.batches_per_epoch == 10 and source.shape.num_classes == 2
    for _ in range(12):  # past an epoch
        x, y = source.next()
        assert x.shape == (4, 1, 28, 28) and y.dtype == torch.int64
        assert torch.equal((x.mean(dim=(1, 2, 3)) > 0).long(), y)  # inverted images are bright
    seen = {k: torch.cat([source.next_from(k)[0] for _ in range(5)]) for k in (0, 1)}  # 5 batches: one epoch of 20
    assert (seen[0] < 0).all() and (seen[1] > 0).all()
    assert len({tuple(row.flatten().tolist()) for row in seen[0]}) == 20  # every image of the domain once
    head = source.head(5)  # the domains in turn
    assert head.shape == (5, 1, 28, 28) and (head.mean(dim=(1, 2, 3)) > 0).tolist() == [False, True, False, True, False]


def test_every_order_resumes_exactly_through_a_checkpoint(tmp_path):
    source = domain_source(tmp_path, seed=3)
    for _ in range(7):
        source.next(), source.next_from(0), source.next_from(1), source.next_from(1)
    buffer = io.BytesIO()
    torch.save(source.state_dict(), buffer)
    expected = [(source.next(), source.next_from(0), source.next_from(1)) for _ in range(8)]
    resumed = domain_source(tmp_path, seed=99)
    resumed.load_state_dict(torch.load(io.BytesIO(buffer.getvalue()), weights_only=True))
    for (xy, a, b) in expected:
        xy2, a2, b2 = resumed.next(), resumed.next_from(0), resumed.next_from(1)
        assert torch.equal(xy[0], xy2[0]) and torch.equal(xy[1], xy2[1])
        assert torch.equal(a[0], a2[0]) and torch.equal(b[0], b2[0])


def test_the_domains_orders_differ_from_each_other_and_the_pooled_one(tmp_path):
    source = domain_source(tmp_path)
    orders = [source.pooled.order[:20]] + [stream.order for stream in source.streams]
    assert not torch.equal(orders[1], orders[2]) and not torch.equal(orders[0], orders[1])


def test_processes_share_each_domains_batches_under_ddp(tmp_path):
    whole, first, second = (domain_source(tmp_path, seed=1) for _ in range(3))
    shares = BatchShare(first, slice(0, 2)), BatchShare(second, slice(2, 4))
    for k in (1, 0, 1):
        x, _ = whole.next_from(k)
        parts = [share.next_from(k) for share in shares]
        assert all(y is None for _, y in parts) and torch.equal(torch.cat([p for p, _ in parts]), x)
    x, y = whole.next()
    (x0, y0), (x1, y1) = (share.next() for share in shares)
    assert torch.equal(torch.cat([x0, x1]), x) and torch.equal(torch.cat([y0, y1]), y)


def test_a_batch_larger_than_a_domain_is_refused(tmp_path):
    with pytest.raises(GanError, match=r"train.batch_size=21 is larger than domain plain \(20 images\); lower it"):
        domain_source(tmp_path, batch_size=21)


# --- training on the pooled domains ------------------------------------------------------------------


def test_a_conditional_gan_on_the_pooled_domains_resumes_bit_identically(tmp_path, one_thread):
    write_idx_dataset(tmp_path, "MNIST", n=40)
    overrides = mnist_domains(tmp_path, "dataset.domains=[thick,colour]") + [
        "train.batch_size=4", "samples.every=3", "samples.n=4", "checkpoint.every=3", "log.every=3",
        "log.progress_bar=false", "eval.every=null", *tiny_model("cgan"),
    ]
    check_train_config(compose_train(overrides))
    for run, steps in (("straight", 6), ("resumed", 3)):
        run_overrides = overrides + [f"train.steps={steps}"]
        training_loop(compose_train(run_overrides), tmp_path / run, {"overrides": run_overrides})
    resume_tiny(tmp_path / "resumed", ["train.steps=6"])
    a, b = (load_checkpoint(tmp_path / run) for run in ("straight", "resumed"))
    assert a["image_shape"] == {"channels": 3, "image_size": 28, "num_classes": 2}
    assert a["step"] == 6 and len(a["data"]["domains"]) == 2
    assert_same_training_state(a, b)
    for stream, stream_b in zip(a["data"]["domains"], b["data"]["domains"]):
        assert torch.equal(stream["order"], stream_b["order"]) and torch.equal(stream["rng"], stream_b["rng"])


# --- unpaired folders (trainA/ trainB/ testA/ testB/) -------------------------------------------------


def write_unpaired(root, sizes=(("trainA", 5), ("trainB", 7), ("testA", 2), ("testB", 3))):
    """CycleGAN's layout: A's images red, B's blue, of several sizes; returns root."""
    for folder, count in sizes:
        colour = (255, 0, 0) if folder.endswith("A") else (0, 0, 255)
        for i in range(count):
            write_image(root / folder / f"{i}.{'png' if i % 2 else 'jpg'}", (30 + 5 * i, 24), colour)
    return root


def unpaired(path, *overrides: str) -> list[str]:
    return ["dataset=unpaired", f"dataset.path={path}", "dataset.image_size=8", "dataset.workers=0", *overrides]


def test_unpaired_folders_are_two_domains_decoded_into_memory(tmp_path):
    cfg = compose_train(unpaired(write_unpaired(tmp_path / "h2z"))).dataset
    check_dataset_files(cfg)
    source = build_batch_source(cfg, 3, CPU, seed=0)
    assert source.domains == ["A", "B"] and len(source) == 12 and source.shape.sample_shape == (3, 8, 8)
    a, _ = source.next_from(0)
    b, _ = source.next_from(1)
    assert (a[:, 0] > 0.9).all() and (a[:, 2] < -0.9).all() and (b[:, 2] > 0.9).all() and (b[:, 0] < -0.9).all()
    x, y = source.next()
    assert torch.equal((x[:, 2].mean(dim=(1, 2)) > 0).long(), y)  # blue images are B's
    test = domain_test_set(cfg)
    assert not test.paired and test.labels is None and test.domains == ["A", "B"]
    assert test.images["A"].shape == (2, 3, 8, 8) and test.images["B"].shape == (3, 3, 8, 8)
    grey = build_batch_source(compose_train(unpaired(tmp_path / "h2z", "dataset.channels=1")).dataset, 3, CPU, 0)
    assert grey.shape.sample_shape == (1, 8, 8)


@pytest.mark.parametrize("case, message", [
    ("unset", "dataset=unpaired needs dataset.path=<a folder holding trainA/ trainB/ testA/ testB/>"),
    ("absent", "dataset.path={path}: {path} is not a folder (it does not exist)"),
    ("no trainB", "dataset.path={path}: {path}/trainB is missing; dataset=unpaired reads one folder of images per "
                  "split and domain there: trainA/, trainB/, testA/, testB/"),
    ("empty trainA", "dataset.path={path}: {path}/trainA holds no image files"),
])
def test_unpaired_folders_that_cannot_work_are_refused_before_the_run(tmp_path, case, message):
    path = tmp_path / "data"
    if case == "no trainB":
        write_unpaired(path, (("trainA", 2),))
    elif case == "empty trainA":
        write_unpaired(path, (("trainB", 2),))
        (path / "trainA").mkdir()
        (path / "trainA" / "notes.txt").write_text("not an image")
    overrides = ["dataset=unpaired"] if case == "unset" else unpaired(path)
    cfg = compose_train(overrides).dataset
    for reader in (check_dataset_files, lambda cfg: build_batch_source(cfg, 1, CPU, 0)):
        with pytest.raises(GanError) as err:
            reader(cfg)
        assert message.format(path=path) in str(err.value)


def test_missing_test_folders_are_named_when_the_test_set_is_read(tmp_path):
    cfg = compose_train(unpaired(write_unpaired(tmp_path, (("trainA", 2), ("trainB", 2), ("testA", 1))))).dataset
    check_dataset_files(cfg)  # training needs only the train folders
    with pytest.raises(GanError, match=f"dataset.path={tmp_path}: {tmp_path}/testB is missing"):
        domain_test_set(cfg)


# --- keys a schema cannot check -----------------------------------------------------------------------


@pytest.mark.parametrize("override, message", [
    ("dataset.domains=[plain]", "dataset.domains=['plain']: give two or more different domains, for example [plain, invert]"),
    ("dataset.domains=[plain,plain]", "dataset.domains=['plain', 'plain']: give two or more different domains"),
    ("dataset.domains=[plain,sepia]", "dataset.domains: unknown domain 'sepia'; use any of plain, invert, edge, thick"),
])
def test_bad_domain_lists_are_refused_naming_the_key(tmp_path, override, message):
    with pytest.raises(GanError, match="invalid config: .*" + message.replace("[", r"\[").replace("]", r"\]")):
        check_train_config(compose_train(mnist_domains(tmp_path, override)))


def test_bad_unpaired_keys_are_refused_naming_them(tmp_path):
    with pytest.raises(GanError) as err:
        check_train_config(compose_train(unpaired(tmp_path, "dataset.channels=2", "dataset.image_size=0")))
    assert "dataset.channels=2 must be 3 (RGB) or 1 (grayscale)" in str(err.value)
    assert "dataset.image_size=0 must be positive" in str(err.value)
    with pytest.raises(Exception, match="Could not override 'dataset.domains'"):  # the schema has no such key
        compose_train(unpaired(tmp_path, "dataset.domains=[plain,invert]"))


# --- CelebA's attributes as domains ------------------------------------------------------------------

HAIR = ("Black_Hair", "Blond_Hair", "Brown_Hair")
# Face colours by the image's hair attributes; a face in none of the domains or in several is green.
HAIR_COLOURS = {("Black_Hair",): (40, 40, 40), ("Blond_Hair",): (240, 220, 120), ("Brown_Hair",): (150, 90, 40)}
OUTSIDE = (0, 200, 0)
# The hair of each of 24 fake faces (index i is file i + 1; partition i % 3: 0 train, 1 valid, 2 test).
# Train: two of each colour, one with two colours (18), one with none (21); the test split likewise.
FAKE_HAIR = {
    0: {"Black_Hair"}, 3: {"Black_Hair"}, 6: {"Blond_Hair"}, 9: {"Blond_Hair"}, 12: {"Brown_Hair"}, 15: {"Brown_Hair"},
    18: {"Black_Hair", "Blond_Hair"},
    2: {"Black_Hair"}, 5: {"Black_Hair"}, 8: {"Blond_Hair"}, 11: {"Blond_Hair"}, 14: {"Brown_Hair"}, 17: {"Brown_Hair"},
    20: {"Blond_Hair", "Brown_Hair"},
    1: {"Black_Hair"},
}


def write_hair_celeba(root, n: int = 24):
    """A fake CelebA of n faces with hair-colour attributes (FAKE_HAIR) and faces coloured by them."""
    faces = [HAIR_COLOURS.get(tuple(sorted(FAKE_HAIR.get(i, ()))), OUTSIDE) for i in range(n)]
    write_celeba(root, n, {name: [name in FAKE_HAIR.get(i, ()) for i in range(n)] for name in HAIR}, faces)
    return root


def celeba(root, *overrides: str, domains=HAIR) -> list[str]:
    return ["dataset=celeba", f"dataset.root={root}", "dataset.download=false", "dataset.image_size=8",
            "dataset.workers=0", f"dataset.domains=[{','.join(domains)}]", *overrides]


def file_numbers(files) -> list[int]:
    """000007.jpg -> 6: the fake's image indices."""
    return [int(path.stem) - 1 for path in files]


def test_a_face_is_in_the_domain_of_the_one_listed_attribute_it_has(tmp_path, caplog):
    write_hair_celeba(tmp_path)
    with caplog.at_level(logging.INFO):
        folder, parts = celeba_domain_files(str(tmp_path), "train", list(HAIR), download=False)
    assert folder == tmp_path / "celeba" and [file_numbers(part) for part in parts] == [[0, 3], [6, 9], [12, 15]]
    assert ("CelebA's train split in dataset.domains: Black_Hair 2 images, Blond_Hair 2 images, Brown_Hair 2 images; "
            "left out: 1 with none of the attributes, 1 with several") in caplog.text  # 21 has none, 18 two
    # Only the listed attributes count: without Blond_Hair, face 18 (black and blond) is black only,
    # and the brown faces have none of the listed attributes.
    _, parts = celeba_domain_files(str(tmp_path), "train", ["Black_Hair", "Blond_Hair"], download=False)
    assert [file_numbers(part) for part in parts] == [[0, 3], [6, 9]]
    _, parts = celeba_domain_files(str(tmp_path), "train", ["Black_Hair", "Brown_Hair"], download=False)
    assert [file_numbers(part) for part in parts] == [[0, 3, 18], [12, 15]]
    _, parts = celeba_domain_files(str(tmp_path), "test", list(HAIR), download=False)
    assert [file_numbers(part) for part in parts] == [[2, 5], [8, 11], [14, 17]]


def test_celeba_domains_are_a_domain_batch_source_and_the_test_split_their_test_set(tmp_path):
    cfg = compose_train(celeba(write_hair_celeba(tmp_path))).dataset
    check_dataset_files(cfg)
    source = build_batch_source(cfg, 2, CPU, seed=0)
    assert isinstance(source, DomainBatchSource) and source.domains == list(HAIR)
    assert len(source) == 6 and source.shape.sample_shape == (3, 8, 8) and source.shape.num_classes == 3
    colours = torch.tensor([HAIR_COLOURS[(name,)] for name in HAIR]).float().div(127.5).sub(1)  # (3, 3) in [-1, 1]

    def domain_of(x: torch.Tensor) -> torch.Tensor:
        """The hair colour nearest each image's mean colour: (B,) domain indices."""
        return torch.cdist(x.mean(dim=(2, 3)), colours).argmin(dim=1)

    for k in range(3):
        x, y = source.next_from(k)
        assert y is None and domain_of(x).tolist() == [k, k]
    for _ in range(4):
        x, y = source.next()
        assert torch.equal(domain_of(x), y)
    test = domain_test_set(cfg)
    assert test.domains == list(HAIR) and test.labels is None and not test.paired
    for k, name in enumerate(HAIR):
        assert test.images[name].shape == (2, 3, 8, 8) and test.images[name].dtype == torch.uint8
        assert domain_of(test.images[name].float().div(127.5).sub(1)).tolist() == [k, k]
    # Without domains, dataset=celeba is what it was: every face of the split, unlabelled.
    plain = build_batch_source(compose_train(celeba(tmp_path)[:-1]).dataset, 2, CPU, seed=0)
    assert not isinstance(plain, DomainBatchSource) and len(plain) == 8 and plain.shape.num_classes == 0
    with pytest.raises(GanError, match=re.escape("dataset=celeba has no domains to translate between unless dataset.domains")):
        domain_test_set(compose_train(celeba(tmp_path)[:-1]).dataset)


@pytest.mark.parametrize("overrides, message", [
    (["dataset.attribute=Smiling"], "dataset.attribute=Smiling and dataset.domains=['Black_Hair', 'Blond_Hair', "
                                    "'Brown_Hair'] together: dataset.attribute makes one attribute a 0/1 label"),
    (["dataset.domains=[Black_Hair]"], "dataset.domains=['Black_Hair']: give two or more different CelebA attributes, "
                                       "for example [Black_Hair, Blond_Hair, Brown_Hair]"),
    (["dataset.domains=[Black_Hair,Black_Hair]"], "dataset.domains=['Black_Hair', 'Black_Hair']: give two or more different"),
])
def test_celeba_domain_keys_that_cannot_work_are_refused_naming_them(tmp_path, overrides, message):
    cfg = compose_train(celeba(write_hair_celeba(tmp_path), *overrides))
    with pytest.raises(GanError, match="invalid config: .*" + re.escape(message)):
        check_train_config(cfg)
    for reader in (check_dataset_files, lambda cfg: build_batch_source(cfg, 2, CPU, 0)):
        with pytest.raises(GanError, match=re.escape(message)):
            reader(cfg.dataset)


def test_celeba_domains_are_checked_against_the_attribute_file(tmp_path):
    write_hair_celeba(tmp_path)
    cfg = compose_train(celeba(tmp_path, domains=("Black_Hair", "Red_Hair", "Grey_Hair"))).dataset
    message = (f"dataset.domains: 'Red_Hair', 'Grey_Hair' are not CelebA attributes (the header of "
               f"{tmp_path / 'celeba' / 'list_attr_celeba.txt'}); use two or more of 5_o_Clock_Shadow, Eyeglasses, "
               "Smiling, Black_Hair, Blond_Hair, Brown_Hair")
    for reader in (check_dataset_files, lambda cfg: build_batch_source(cfg, 2, CPU, 0), domain_test_set):
        with pytest.raises(GanError) as err:
            reader(cfg)
        assert str(err.value) == message
    cfg = compose_train(celeba(tmp_path, domains=("Black_Hair", "5_o_Clock_Shadow"))).dataset
    with pytest.raises(GanError, match=re.escape(
            "dataset.domains=['Black_Hair', '5_o_Clock_Shadow']: no image of CelebA's train split has 5_o_Clock_Shadow "
            "without another of the listed attributes")):
        build_batch_source(cfg, 2, CPU, 0)


def test_celeba_domains_over_the_memory_budget_are_refused_not_streamed(tmp_path):
    # 6 training faces of 3x8x8 take 1152 bytes; a budget of 1 KB refuses them.
    cfg = compose_train(celeba(write_hair_celeba(tmp_path), f"dataset.memory_budget_mb={1024 / 2**20}")).dataset
    with pytest.raises(GanError, match=re.escape(
            "dataset.domains=['Black_Hair', 'Blond_Hair', 'Brown_Hair']: the 6 faces of CelebA's train split in these "
            "domains take 0 MB decoded at dataset.image_size=8, over dataset.memory_budget_mb=0.000976562; domains are "
            "held in memory, never streamed: raise dataset.memory_budget_mb")):
        build_batch_source(cfg, 2, CPU, 0)


def test_a_translation_model_on_celeba_needs_domains_and_a_cycle_metric_to_rank_by(tmp_path):
    stargan = ["model=stargan", "loss=wgan_gp"]
    with pytest.raises(GanError, match=re.escape("dataset=celeba: model=stargan translates between domains; use ")):
        check_train_config(compose_train(["dataset=celeba", *stargan]))
    with pytest.raises(GanError, match=re.escape(
            "eval.best=fid: the domains of dataset=celeba are measured by the cycle metrics alone")):
        check_train_config(compose_train(celeba(tmp_path, *stargan)))
    check_train_config(compose_train(celeba(tmp_path, *stargan, "eval.best=cycle_l1")))
    check_train_config(compose_train(celeba(tmp_path, *stargan, "eval.every=null")))
    # dataset=unpaired names no domains (they are A and B) and is evaluated the same way.
    check_train_config(compose_train(["experiment=cyclegan_paper", f"dataset.path={tmp_path}"]))
    with pytest.raises(GanError, match=re.escape("eval.best=fid: the domains of dataset=unpaired are measured by the cycle")):
        check_train_config(compose_train(unpaired(tmp_path, "model=cyclegan")))


def test_stargan_trains_on_celeba_hair_colours_evaluates_and_translates(tmp_path, one_thread):
    """The translation game, the loop and its evaluation, and gan-translate, unchanged on CelebA's domains."""
    write_hair_celeba(tmp_path / "data")
    overrides = celeba(tmp_path / "data", "dataset.image_size=32") + [
        "model=stargan", "model.g_width=4", "model.d_width=4", "model.g_blocks=1", "loss=wgan_gp", "train.steps=2",
        "train.batch_size=2", "eval.every=1", "eval.best=cycle_l1", "samples.every=2", "samples.n=4",
        "log.progress_bar=false",
    ]
    check_train_config(compose_train(overrides))
    training_loop(compose_train(overrides), tmp_path / "run", {"overrides": overrides})
    checkpoint = load_checkpoint(tmp_path / "run")
    assert checkpoint["step"] == 2 and checkpoint["image_shape"] == {"channels": 3, "image_size": 32, "num_classes": 3}
    evaluations = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in evaluations] == [1, 2] and evaluations[-1]["n"] == 2
    metrics = {key.split("/")[1] for key in evaluations[-1] if "/" in key}
    assert metrics == {"cycle_l1", "cycle_l1_probe"}  # no labels, no pairs, no evaluator for faces
    assert "Black_Hair->Brown_Hair/cycle_l1" in evaluations[-1] and (tmp_path / "run" / "checkpoints" / "best.pt").is_file()
    cfg = compose_train([f"ckpt={tmp_path / 'run'}", "images=test", "from=Blond_Hair", "to=Black_Hair",
                         f"out={tmp_path / 'grid.png'}"], config_name="translate")
    assert translate_requested(cfg).startswith("2 images of Blond_Hair translated into Black_Hair: a grid")
    assert (tmp_path / "grid.png").is_file()
