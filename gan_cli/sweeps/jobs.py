"""The jobs of a sweep, read from what gan-train left in their folders.

A job folder is any folder holding `.hydra/overrides.yaml` (what Hydra writes for every job). From it:
the overrides; the status from train.log (finished, failed with its message, or incomplete: running,
killed or stopped); every evaluation from metrics.jsonl; and every scalar logged to TensorBoard
(`loss/D`, `loss/G`, `D(x)`, ...) from tb/.
"""

import json
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from gan_cli.errors import GanError

ERROR_LINE = re.compile(r"gan-train: error: (.*)")


@dataclass
class Job:
    folder: Path
    name: str  # the folder, relative to the sweep folder
    overrides: list[str]
    number: int | None = None  # Hydra's job number, the prefix of the folder's name
    settings: dict[str, str] = field(default_factory=dict)  # {key: value} of the overrides

    @classmethod
    def read(cls, folder: Path, sweep: Path) -> "Job":
        overrides = [str(o) for o in OmegaConf.load(folder / ".hydra" / "overrides.yaml")]
        prefix = folder.name.split("_", 1)[0]
        settings = {key: value for key, _, value in (o.lstrip("+~").partition("=") for o in overrides)}
        return cls(folder, str(folder.relative_to(sweep)), overrides, int(prefix) if prefix.isdigit() else None, settings)

    @cached_property
    def status(self) -> str:
        """finished | failed: <message> | incomplete (running, killed, or stopped by a signal)."""
        return log_status(self.folder / "train.log")

    @cached_property
    def evaluations(self) -> dict[str, list[tuple[int, float]]]:
        """{metric value: [(step, value), ...]} from metrics.jsonl."""
        path = self.folder / "metrics.jsonl"
        series: dict[str, list[tuple[int, float]]] = {}
        for line in path.read_text().splitlines() if path.is_file() else []:
            if not line.strip():
                continue
            record = json.loads(line)
            for name, value in record.items():
                if name not in ("step", "n", "reference") and isinstance(value, (int, float)):
                    series.setdefault(name, []).append((record["step"], float(value)))
        return series

    @cached_property
    def scalars(self) -> dict[str, list[tuple[int, float]]]:
        """{TensorBoard tag: [(step, value), ...]} of tb/ (events a resumed run replaced are dropped)."""
        tb = self.folder / "tb"
        if not tb.is_dir():
            return {}
        events = EventAccumulator(str(tb), size_guidance={"scalars": 0})
        events.Reload()
        return {tag: [(e.step, e.value) for e in events.Scalars(tag)] for tag in events.Tags()["scalars"]}

    def series(self, metric: str) -> list[tuple[int, float]]:
        """The values of `metric` over steps: an evaluation value, else a TensorBoard scalar."""
        return self.evaluations.get(metric) or self.scalars.get(metric, [])

    @property
    def steps(self) -> int | None:
        """The last step this job logged."""
        logged = [step for series in (*self.evaluations.values(), *self.scalars.values()) for step, _ in series]
        return max(logged) if logged else None


def log_status(log_file: Path) -> str:
    """A run's status from its train.log: that of its last attempt (a resume or restart starts another)."""
    status = "incomplete"
    for line in log_file.read_text(errors="replace").splitlines() if log_file.is_file() else []:
        error = ERROR_LINE.search(line)
        if error:
            status = f"failed: {error.group(1)}"
        elif "Finished " in line and "Run directory:" in line:
            status = "finished"
        elif "Run directory:" in line:  # the start of an attempt
            status = "incomplete"
    return status


def find_jobs(sweep: Path) -> list[Job]:
    """Every job folder under `sweep` (a multirun folder, or a folder of several), in job order."""
    if not sweep.is_dir():
        raise GanError(f"{sweep} is not a folder; give a sweep's folder, such as multirun/<date>/<time>")
    folders = sorted(p.parent.parent for p in sweep.rglob("overrides.yaml") if p.parent.name == ".hydra")
    if not folders:
        raise GanError(f"{sweep} holds no job folders (folders with .hydra/overrides.yaml); give a sweep's folder")
    jobs = [Job.read(folder, sweep) for folder in folders]
    return sorted(jobs, key=lambda job: (str(Path(job.name).parent), job.number is None, job.number or 0, job.name))
