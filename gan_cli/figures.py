"""Pictures of the game on toy data, drawn with matplotlib (Agg: no display needed).

- density_figure: the 1-D picture of Goodfellow et al. 2014, Fig. 1: the data density, G's density,
  D's output and the optimal D*(x) = p_data / (p_data + p_g), and, for a one-dimensional latent,
  the map x = G(z) as lines from z (placed by its quantile) to x.
- scatter_figure: 2-D real and generated points over D's output as a heat map, with the modes.
- points_figure: generated points alone (gan-sample on a toy checkpoint).

Each returns a matplotlib Figure; `figure_image` turns one into a float (3, H, W) image in [0, 1]
for TensorBoard and PNG files. Figures are built without pyplot, so no global state is touched.
"""

from dataclasses import dataclass

import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Circle

LIMIT = 1.05  # axes span [-LIMIT, LIMIT]: G's tanh range and a margin
DPI = 100


def figure_image(figure: Figure) -> torch.Tensor:
    """The rendered figure as float (3, H, W) in [0, 1]."""
    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())  # (H, W, 4) uint8
    return torch.from_numpy(rgba[:, :, :3].copy()).permute(2, 0, 1).float().div(255)


@dataclass
class DensityPanel:
    """The curves of the 1-D picture, each sampled at `x` (M,)."""

    x: torch.Tensor
    p_data: torch.Tensor
    p_g: torch.Tensor
    d: torch.Tensor  # D's score (a probability for the cross-entropy losses)
    d_star: torch.Tensor | None  # the optimal D, drawn when D's score is a probability
    z_to_x: tuple[torch.Tensor, torch.Tensor] | None = None  # (z quantiles in [-1, 1], G(z)) for a 1-D latent


def density_figure(panel: DensityPanel, title: str) -> Figure:
    rows = 3 if panel.z_to_x is not None else 2
    figure = Figure(figsize=(6.4, 2.2 * rows), dpi=DPI, layout="constrained")
    axes = figure.subplots(rows, 1, sharex=True, height_ratios=[3, 2, 1][:rows])
    density, judge = axes[0], axes[1]
    density.plot(panel.x, panel.p_data, "k:", linewidth=2, label="data $p_{data}$")
    density.plot(panel.x, panel.p_g, "g-", linewidth=1.5, label="generator $p_g$")
    density.set_ylabel("density")
    density.set_title(title)
    density.legend(loc="upper right", fontsize="small")
    judge.plot(panel.x, panel.d, "b--", linewidth=1.5, label="D(x)")
    if panel.d_star is not None:
        judge.plot(panel.x, panel.d_star, color="tab:orange", linewidth=1, label="D*(x) = $p_{data}/(p_{data}+p_g)$")
        judge.axhline(0.5, color="grey", linewidth=0.5)
        judge.set_ylim(-0.05, 1.05)
    judge.set_ylabel("discriminator")
    judge.legend(loc="upper right", fontsize="small")
    if panel.z_to_x is not None:
        z, x = panel.z_to_x
        mapping = axes[2]
        for start, end in zip(z.tolist(), x.tolist()):
            mapping.plot([start, end], [0, 1], color="grey", linewidth=0.7)
        mapping.set_yticks([0, 1], ["z", "x"])
        mapping.set_ylim(-0.1, 1.1)
    axes[-1].set_xlim(-LIMIT, LIMIT)
    axes[-1].set_xlabel("x" if panel.z_to_x is None else "x = G(z); z placed by its quantile")
    return figure


def scatter_figure(
    real: torch.Tensor,  # (N, 2)
    fake: torch.Tensor,  # (M, 2)
    heat: torch.Tensor,  # (R, R) D's score on a grid over [-LIMIT, LIMIT]^2, row k at y_k
    centers: torch.Tensor,  # (K, 2)
    radii: torch.Tensor,  # (K,) 3 standard deviations
    title: str,
    score_label: str,
) -> Figure:
    figure = Figure(figsize=(6.4, 5.6), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    image = axes.imshow(
        heat.numpy(), origin="lower", extent=(-LIMIT, LIMIT, -LIMIT, LIMIT), cmap="RdBu", alpha=0.6, aspect="equal"
    )
    figure.colorbar(image, ax=axes, label=score_label, shrink=0.85)
    axes.scatter(real[:, 0], real[:, 1], s=2, color="black", alpha=0.3, label="real")
    axes.scatter(fake[:, 0], fake[:, 1], s=2, color="tab:green", alpha=0.6, label="generated")
    for (cx, cy), radius in zip(centers.tolist(), radii.tolist()):
        axes.add_patch(Circle((cx, cy), radius, fill=False, color="black", linewidth=0.6))
    axes.set_xlim(-LIMIT, LIMIT)
    axes.set_ylim(-LIMIT, LIMIT)
    axes.set_title(title)
    axes.legend(loc="upper right", fontsize="small", markerscale=4)
    return figure


def points_figure(points: torch.Tensor, title: str) -> Figure:
    """Points (N, 1) as a histogram or (N, 2) as a scatter, over G's range."""
    figure = Figure(figsize=(6.4, 4.8 if points.shape[1] == 1 else 6.0), dpi=DPI, layout="constrained")
    axes = figure.subplots()
    if points.shape[1] == 1:
        axes.hist(points[:, 0].numpy(), bins=100, range=(-LIMIT, LIMIT), density=True, color="tab:green")
        axes.set_ylabel("density")
    else:
        axes.scatter(points[:, 0], points[:, 1], s=2, color="tab:green", alpha=0.6)
        axes.set_ylim(-LIMIT, LIMIT)
        axes.set_aspect("equal")
    axes.set_xlim(-LIMIT, LIMIT)
    axes.set_title(title)
    return figure
