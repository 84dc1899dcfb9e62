"""Property-based tests: whatever bytes or overrides come in, only clean errors come out."""

import gzip
import struct
import tempfile
from pathlib import Path

from hydra.errors import HydraException
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gan_cli.cli import check_group_choices, check_new_keys
from gan_cli.data.idx import parse_idx, read_idx
from gan_cli.errors import GanError
from gan_cli.validation import check_train_config
from tests.helpers import compose_train

# Modest example counts: enough to explore the edges every run, fast enough for the default suite.
# Parsing is cheap; composing a config takes a few milliseconds.
MANY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Bytes that mostly look like IDX headers (so the checks past the magic number get exercised),
# followed by random data; plus plain random bytes.
idx_like = st.builds(
    lambda type_code, dims, data: bytes([0, 0, type_code, len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + data,
    st.sampled_from([0x08, 0x08, 0x08, 0x09, 0x0D]),
    st.lists(st.integers(0, 2**32 - 1) | st.integers(0, 6), max_size=4),
    st.binary(max_size=200),
)
raw_bytes = st.binary(max_size=300) | idx_like


@MANY
@given(raw_bytes)
# Found by this test: a zero dimension beside huge ones passes the length check, then numpy cannot shape it.
@example(bytes([0, 0, 8, 4]) + struct.pack(">4I", 0, 2**8, 2**24, 2**31))
def test_idx_parser_raises_only_gan_error(raw):
    try:
        array = parse_idx(raw, "random.idx")
    except GanError:
        return
    assert array.numel() == len(raw) - 4 - 4 * raw[3]  # accepted: the data is exactly what the header promised


def damaged_gzip(raw: bytes, cut: int, flip: int) -> bytes:
    """`raw` gzip-compressed, then cut short at `cut` and with byte `flip` inverted (0: left alone)."""
    data = bytearray(gzip.compress(raw)[:cut])
    if 0 < flip < len(data):
        data[flip] ^= 0xFF
    return bytes(data)


gzip_files = st.builds(damaged_gzip, raw_bytes, st.integers(0, 400), st.integers(0, 400))


@MANY
@given(st.one_of(raw_bytes.map(lambda raw: ("data.idx", raw)), (raw_bytes | gzip_files).map(lambda raw: ("data.idx.gz", raw))))
@example(("data.idx.gz", damaged_gzip(bytes(range(256)) * 20, cut=400, flip=30)))  # zlib.error, found by hand
def test_idx_files_plain_or_gzip_raise_only_gan_error(file):
    name, content = file
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / name
        path.write_bytes(content)
        try:
            read_idx(path)
        except GanError:
            pass


KEYS = [
    "train.batch_size", "train.steps", "train.epochs", "train.d_steps", "train.ema_decay", "train.precision",
    "train.on_nan", "train.max_skipped_steps", "optimizer.lr", "optimizer.generator.lr", "optimizer.generator.betas",
    "model.latent_dim", "model.g_width", "dataset.image_size", "dataset.channels", "log.every", "samples.every",
    "checkpoint.every", "seed", "device", "model", "dataset", "loss", "optimizer", "train", "no.such.key",
    "loss.clip", "loss.gradient_penalty", "loss.label_smoothing", "model.codes.categorical", "model.conditional",
    "model.arch", "train.replay_size", "train.replay_fraction", "experiment",
]
VALUES = (
    st.integers(-(2**40), 2**40).map(str)
    | st.floats(allow_nan=True, allow_infinity=True).map(str)
    | st.sampled_from(["null", "true", "[]", "[1,2]", "{a:1}", "abc", "fake", "dcgan", "''", "${oc.env:HOME}", "${x}"])
    | st.text(max_size=12)
)
override = st.builds(lambda prefix, key, value: f"{prefix}{key}={value}", st.sampled_from(["", "+", "++", "~"]), st.sampled_from(KEYS), VALUES)
any_text = st.text(max_size=30)


@FEW
@given(st.lists(override | any_text, max_size=3))
# Found by this test: Hydra crashes on a number as a group's option; unresolvable or mistyped
# interpolations and values forced in with + reached the value checks.
@example(["model=0"])
@example(["~dataset=5"])
@example(["optimizer=[1,2]"])
@example(["log.every=${x}"])
@example(["checkpoint.every=${oc.env:HOME}"])
@example(["+dataset.image_size=dcgan"])
def test_random_overrides_give_only_clean_errors(overrides):
    """Hydra's own errors (gan-train prints them as one line) or GanError (one line); never another exception,
    which Hydra would print as a traceback."""
    try:
        check_new_keys(overrides)  # what gan-train checks before Hydra sees the command line
        check_group_choices(overrides)
        check_train_config(compose_train(overrides))
    except (HydraException, GanError):
        pass
