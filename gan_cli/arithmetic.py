"""Latent arithmetic (Radford et al. 2016, section 6.3 and figure 7): `gan-sample mode=arithmetic`.

`terms` names groups of latent vectors by their index in the grid that `n` and `seed` draw (the grid
`gan-sample ckpt=... n=64 seed=0 out=grid.png` writes, numbered row by row from 0), for example
'[3,17,22] - [5,9,40] + [1,2,8]'. Each group is averaged (one vector per concept is noisy; three
agree on what they share), the expression is evaluated, and the figure shows each term's images and
the image of its average, then the result and NEIGHBOURS noisy copies of it (uniform noise of
+-NOISE added to z, as in the paper).

The grammar: groups joined by + and -, scaled by numbers with * and / (which bind tighter), and
brackets ( ) to group:
    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("+" | "-") unary | number | group | "(" expression ")"
    group      := "[" index ("," index)* "]"
Only sums of scaled groups make a latent: a number added to a group, two groups multiplied, or a
result that is a plain number are refused.
"""

import re
from dataclasses import dataclass
from pathlib import Path

import torch

from gan_cli.errors import GanError

NEIGHBOURS = 8
NOISE = 0.25  # the paper's: uniform noise in [-0.25, 0.25] added to the result's z
EXAMPLE = "terms='[3,17,22] - [5,9,40] + [1,2,8]'"
TOKEN = re.compile(r"\s*(?:(\d+\.\d*|\.\d+|\d+)|(\S))")  # a number, or any other single character


class TermsError(ValueError):
    """A malformed `terms` expression; the message says what and where."""


@dataclass
class Combination:
    """A latent as a linear combination of group averages: coefficients (T,) over groups (T tuples of indices)."""

    groups: list[tuple[int, ...]]
    coefficients: list[float]

    def scaled(self, factor: float) -> "Combination":
        return Combination(self.groups, [factor * c for c in self.coefficients])

    def plus(self, other: "Combination") -> "Combination":
        return Combination(self.groups + other.groups, self.coefficients + other.coefficients)


# --- parsing -----------------------------------------------------------------------------------------


class _Parser:
    """Recursive descent over the tokens of `text`; values are floats or Combinations."""

    def __init__(self, text: str):
        self.text = text
        # (token, position in text, whether it is a number); TOKEN matches trailing blanks as nothing
        self.tokens = [
            (match.group(match.lastindex), match.start(match.lastindex), match.lastindex == 1)
            for match in TOKEN.finditer(text)
            if match.lastindex
        ]
        self.at = 0

    def parse(self) -> Combination:
        if not self.tokens:
            raise TermsError("it is empty")
        value = self.expression()
        if self.at < len(self.tokens):
            self.fail(f"expected an operator (+ - * /) before {self.peek()!r}")
        if not isinstance(value, Combination):
            raise TermsError(f"it is the number {value:g}, not a latent: it needs at least one group [i,j,...]")
        return value

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self) -> str:
        token = self.peek()
        if token is None:
            raise TermsError("it ends too early")
        self.at += 1
        return token

    def fail(self, problem: str):
        position = self.tokens[self.at][1] if self.at < len(self.tokens) else len(self.text)
        raise TermsError(f"{problem} at character {position + 1}")

    def expression(self):
        value = self.term()
        while self.peek() in ("+", "-"):
            sign = 1.0 if self.take() == "+" else -1.0
            value = _add(value, _scale(self.term(), sign))
        return value

    def term(self):
        value = self.unary()
        while self.peek() in ("*", "/"):
            operator = self.take()
            value = _multiply(value, self.unary()) if operator == "*" else _divide(value, self.unary())
        return value

    def unary(self):
        token = self.peek()
        if token in ("+", "-"):
            self.take()
            return _scale(self.unary(), 1.0 if token == "+" else -1.0)
        if token == "(":
            self.take()
            value = self.expression()
            if self.peek() != ")":
                self.fail("expected )")
            self.take()
            return value
        if token == "[":
            return self.group()
        if token is not None and self.tokens[self.at][2]:
            return float(self.take())
        self.fail(f"expected a group [i,j,...], a number or ( but found {token!r}" if token else "expected a group [i,j,...]")

    def group(self) -> Combination:
        self.take()  # [
        indices = [self.index()]
        while self.peek() == ",":
            self.take()
            indices.append(self.index())
        if self.peek() != "]":
            self.fail("expected , or ] in a group")
        self.take()
        return Combination([tuple(indices)], [1.0])

    def index(self) -> int:
        token = self.peek()
        if token is None or not token.isdigit():  # a number token with a decimal point is not an index either
            self.fail(f"expected a grid index (0, 1, 2, ...) but found {token!r}" if token else "expected a grid index")
        return int(self.take())


def _scale(value, factor: float):
    return value.scaled(factor) if isinstance(value, Combination) else factor * value


def _add(a, b):
    if isinstance(a, Combination) and isinstance(b, Combination):
        return a.plus(b)
    if isinstance(a, Combination) or isinstance(b, Combination):
        raise TermsError("a number cannot be added to a group: scale groups with * instead")
    return a + b


def _multiply(a, b):
    if isinstance(a, Combination) and isinstance(b, Combination):
        raise TermsError("two groups cannot be multiplied: scale a group by a number")
    if isinstance(a, Combination):
        return a.scaled(b)
    return _scale(b, a)


def _divide(a, b):
    if isinstance(b, Combination):
        raise TermsError("nothing can be divided by a group: divide a group by a number")
    if b == 0:
        raise TermsError("division by zero")
    return _scale(a, 1.0 / b)


def parse_terms(text: str) -> Combination:
    """The Combination `text` describes; raises TermsError saying what is wrong and where."""
    return _Parser(text).parse()


def arithmetic_problems(cfg) -> list[str]:
    """gan-sample's refusals about `terms` (the grid size n is known before the checkpoint is read)."""
    if cfg.mode != "arithmetic":
        return [f"terms= goes with mode=arithmetic (mode={cfg.mode} would ignore it): drop it"] if cfg.terms is not None else []
    if cfg.terms is None:
        return [f"mode=arithmetic needs terms=: groups of indices into the grid of n={cfg.n} images, e.g. {EXAMPLE}"]
    problems = [] if cfg.labels is None else ["labels=all (a row per class) is for mode=sample; mode=arithmetic takes label=<k>"]
    try:
        combination = parse_terms(str(cfg.terms))
    except TermsError as err:
        return problems + [f"terms={cfg.terms!r} cannot be read: {err}; write groups of grid indices joined by + and -, e.g. {EXAMPLE}"]
    outside = sorted({i for group in combination.groups for i in group if i >= cfg.n})
    if outside:
        problems.append(
            f"terms: index {', '.join(map(str, outside))} is outside the grid of n={cfg.n} images (0 to {cfg.n - 1}); "
            f"number the grid with gan-sample ckpt=<checkpoint> n={cfg.n} seed={cfg.seed} out=grid.png, or raise n"
        )
    return problems


# --- evaluating and drawing ---------------------------------------------------------------------------


def combined_inputs(grid: dict[str, torch.Tensor], combination: Combination) -> tuple[dict, dict]:
    """(each group's averaged inputs, the result's inputs) from the grid's inputs: every float input (z, and
    InfoGAN's codes c) is averaged over a group and combined; labels y are left to the caller. Values
    are (T, ...) for the T groups and (1, ...) for the result."""
    floats = {name: value for name, value in grid.items() if value.is_floating_point()}
    averages = {name: torch.stack([value[list(group)].mean(0) for group in combination.groups]) for name, value in floats.items()}
    weights = torch.tensor(combination.coefficients)[:, None]  # (T, 1)
    result = {name: (weights * value).sum(0, keepdim=True) for name, value in averages.items()}
    return averages, result


def neighbours(result: dict[str, torch.Tensor], count: int, seed: int) -> dict[str, torch.Tensor]:
    """The result (first) and `count` copies with uniform noise in [-NOISE, NOISE] added to z: (count + 1, ...)."""
    noise = (torch.rand(count, result["z"].shape[1], generator=torch.Generator().manual_seed(seed)) * 2 - 1) * NOISE
    copies = {name: value.repeat(count + 1, *([1] * (value.dim() - 1))) for name, value in result.items()}
    copies["z"] = copies["z"] + torch.cat([torch.zeros(1, noise.shape[1]), noise])
    return copies


def write_arithmetic(generator, cfg, out: Path) -> str:
    """Draw what `terms` asks for from the grid of n images of `seed`, as a figure (PNG) at `out`."""
    from gan_cli.sampling.files import save_png
    from gan_cli.sampling.inputs import generate, seeded_inputs
    from gan_cli.sampling.requests import label_batch  # not at the top: requests imports this module

    combination = parse_terms(str(cfg.terms))  # already checked by arithmetic_problems
    if generator.num_classes and cfg.label is None:
        raise GanError("mode=arithmetic on a conditional model needs label=<k>: every image is drawn for that class")
    grid = seeded_inputs(generator, cfg.n, cfg.seed, label_batch(generator, cfg.label, cfg.n))
    averages, result = combined_inputs(grid, combination)
    members = [i for group in combination.groups for i in group]
    around = neighbours(result, NEIGHBOURS, cfg.seed + 1)
    inputs = {name: torch.cat([grid[name][members], averages[name], around[name]]) for name in averages}  # one batch
    if "y" in grid:
        inputs["y"] = grid["y"][:1].repeat(len(inputs["z"]))
    images = generate(generator, inputs, cfg.batch_size)
    figure = arithmetic_figure(images, combination)
    from gan_cli.figures import figure_image  # matplotlib

    save_png(figure_image(figure), out)
    return f"the latent arithmetic {cfg.terms} (result and {NEIGHBOURS} noisy neighbours) to {out}"


def arithmetic_figure(images: torch.Tensor, combination: Combination):
    """Figure 7's layout: a row per term (its images, then the image of their average, headed by the
    term's coefficient), then the result and its neighbours. images (M, C, H, W) in [-1, 1], in the
    order write_arithmetic makes them: members, averages, result, neighbours."""
    from matplotlib.figure import Figure  # here, not at the top: only this mode draws

    sizes = [len(group) for group in combination.groups]
    columns = max(max(sizes) + 1, NEIGHBOURS + 1)
    figure = Figure(figsize=(1.1 * columns, 1.25 * (len(sizes) + 1)), dpi=100, layout="constrained")
    axes = figure.subplots(len(sizes) + 1, columns, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    members, averages = images[: sum(sizes)].split(sizes), images[sum(sizes) : sum(sizes) + len(sizes)]
    for row, (group, coefficient) in enumerate(zip(combination.groups, combination.coefficients)):
        for column, (index, image) in enumerate(zip(group, members[row])):
            _show(axes[row, column], image, f"#{index}")
        sign = "+" if coefficient >= 0 else "-"
        _show(axes[row, columns - 1], averages[row], f"{sign} {abs(coefficient):g} x mean")
    result = images[sum(sizes) + len(sizes) :]
    for column, image in enumerate(result):
        _show(axes[-1, column], image, "= result" if column == 0 else f"noisy {column}")
    return figure


def _show(ax, image: torch.Tensor, title: str) -> None:
    """One image (C, H, W) in [-1, 1] on ax, gray or colour."""
    pixels = ((image.clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()
    ax.imshow(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels, cmap="gray", vmin=0, vmax=1)
    ax.set_title(title, fontsize=8)
