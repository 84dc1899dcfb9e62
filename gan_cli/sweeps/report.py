"""A sweep's jobs side by side: a table ranked by one metric (Markdown and CSV) and the metric's curves.

For the chosen metric, an evaluation value (fid, kid, is, precision, ...) or any TensorBoard scalar
(loss/G, D(x), ...), each job gets its best value with its step, and its final value; the table adds
the final value of every other evaluation value and of the two losses. Jobs are ranked by their best
(or final) value in the direction the metric improves, finished jobs before the others (incomplete or
failed, whose values are not final); jobs without a value come last in their group, in job order.
"""

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from gan_cli.files import atomic_write  # noqa: E402
from gan_cli.sweeps.jobs import Job  # noqa: E402

LOSSES = ("loss/D", "loss/G")
STATUS_WIDTH = 60  # characters of a failure message shown in the Markdown table (the CSV has it all)


@dataclass
class Row:
    job: Job
    best: tuple[int, float] | None  # (step, value)
    final: tuple[int, float] | None


def best_point(series: list[tuple[int, float]], higher_is_better: bool) -> tuple[int, float] | None:
    """The (step, value) with the best finite value, the earliest of equals."""
    points = [(step, value) for step, value in series if math.isfinite(value)]
    if not points:
        return None
    sign = -1 if higher_is_better else 1
    return min(points, key=lambda point: (sign * point[1], point[0]))


class SweepReport:
    def __init__(self, jobs: list[Job], metric: str, higher_is_better: bool, by: str = "best"):
        self.metric, self.higher_is_better, self.by = metric, higher_is_better, by
        rows = [Row(job, best_point(job.series(metric), higher_is_better), _last(job.series(metric))) for job in jobs]
        self.rows = sorted(rows, key=self._rank_key)  # stable: ties keep job order
        settings = [job.settings for job in jobs]
        keys = list(dict.fromkeys(key for s in settings for key in s))
        self.varying = [key for key in keys if len({s.get(key) for s in settings}) > 1]
        self.common = [f"{key}={settings[0][key]}" for key in keys if key not in self.varying]
        evaluated = dict.fromkeys(name for job in jobs for name in job.evaluations)
        logged = [tag for tag in LOSSES if any(job.scalars.get(tag) for job in jobs)]
        self.finals = [name for name in (*evaluated, *logged) if name != metric]

    def _rank_key(self, row: Row) -> tuple:
        unfinished = row.job.status != "finished"
        point = row.best if self.by == "best" else row.final
        if point is None or not math.isfinite(point[1]):
            return (unfinished, 1, 0.0)
        return (unfinished, 0, -point[1] if self.higher_is_better else point[1])

    @property
    def direction(self) -> str:
        return "higher is better" if self.higher_is_better else "lower is better"

    def columns(self) -> list[str]:
        m = self.metric
        return ["rank", "job", *self.varying, "status", "step", f"best {m}", f"best {m} step", f"final {m}"] + [
            f"final {name}" for name in self.finals
        ]

    def values(self) -> list[list]:
        """One list per row, in column order: numbers as numbers, missing values as None."""
        table = []
        for rank, row in enumerate(self.rows, start=1):
            job = row.job
            finals = [_value(_last(job.series(name))) for name in self.finals]
            table.append(
                [rank, job.number if job.number is not None else job.name, *(job.settings.get(k) for k in self.varying)]
                + [job.status, job.steps, _value(row.best), row.best[0] if row.best else None, _value(row.final), *finals]
            )
        return table

    def markdown(self, title: str) -> str:
        jobs = f"{len(self.rows)} job" + ("" if len(self.rows) == 1 else "s")
        lines = [f"# Sweep report: {title}", "", f"{jobs}, ranked by the {self.by} {self.metric} ({self.direction})."]
        if self.common:
            lines.append(f"Common to all jobs: {' '.join(self.common)}.")
        lines += ["", "| " + " | ".join(self.columns()) + " |", "|" + "---|" * len(self.columns())]
        for values in self.values():
            lines.append("| " + " | ".join(_markdown_cell(value) for value in values) + " |")
        return "\n".join(lines) + "\n"

    def write(self, prefix: Path, title: str) -> list[Path]:
        """<prefix>.md, <prefix>.csv and <prefix>.png; returns their paths."""
        paths = [prefix.with_suffix(suffix) for suffix in (".md", ".csv", ".png")]
        atomic_write(paths[0], lambda f: f.write(self.markdown(title).encode()))
        atomic_write(paths[1], lambda f: f.write(self._csv().encode()))
        atomic_write(paths[2], lambda f: self._plot(title).savefig(f, format="png", dpi=120, bbox_inches="tight"))
        plt.close("all")
        return paths

    def _csv(self) -> str:
        text = io.StringIO()
        writer = csv.writer(text)
        writer.writerow([*self.columns(), "folder", "overrides"])
        for row, values in zip(self.rows, self.values()):
            writer.writerow([*("" if v is None else v for v in values), row.job.name, " ".join(row.job.overrides)])
        return text.getvalue()

    def _plot(self, title: str):
        figure, axes = plt.subplots(figsize=(8, 5))
        for row in self.rows:
            series = row.job.series(self.metric)
            if series:
                steps, values = zip(*series)
                label = " ".join(f"{k}={row.job.settings.get(k)}" for k in self.varying) or row.job.name
                axes.plot(steps, values, marker="o" if len(series) < 20 else None, label=f"#{row.job.number} {label}")
        axes.set_xlabel("step")
        axes.set_ylabel(self.metric)
        axes.set_title(f"{self.metric} ({self.direction}): {title}", fontsize=10)
        axes.grid(alpha=0.3)
        if axes.lines:
            axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        return figure


def _last(series: list[tuple[int, float]]) -> tuple[int, float] | None:
    return max(series, key=lambda point: point[0]) if series else None


def _value(point: tuple[int, float] | None) -> float | None:
    return point[1] if point else None


def _markdown_cell(value) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4g}"
    text = str(value)
    if text.startswith("failed: ") and len(text) > STATUS_WIDTH:
        text = text[: STATUS_WIDTH - 3] + "..."
    return text.replace("|", "\\|")
