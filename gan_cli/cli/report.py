"""gan-report: compare the jobs of a sweep (a multirun folder) in a ranked table and a plot.

    gan-report multirun/2026-11-22/10-00-00                 # ranked by eval.best (FID by default)
    gan-report multirun/2026-11-22/10-00-00 --metric kid --by final
    gan-report multirun/2026-11-22/10-00-00 --metric loss/G  # without evaluations: a TensorBoard scalar

Writes <sweep>/report.md, report.csv and report.png (or --out PREFIX) and prints the Markdown table.
"""

import argparse
from pathlib import Path

from omegaconf import OmegaConf

from gan_cli.cli import user_errors
from gan_cli.errors import GanError
from gan_cli.metrics.suite import VALUES, higher_is_better
from gan_cli.sweeps.jobs import Job, find_jobs
from gan_cli.sweeps.report import SweepReport

DEFAULT_SCALAR = "loss/G"  # the ranking of a sweep without evaluations, unless --metric says otherwise


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="gan-report", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", type=Path, help="a sweep's folder (multirun/<date>/<time>), or a folder of several")
    parser.add_argument(
        "--metric",
        help="what to rank by: an evaluation value (fid, kid, is, precision, ...) or a TensorBoard scalar "
        f"(loss/G, D(x), ...); default: the jobs' eval.best when they were evaluated, else {DEFAULT_SCALAR}",
    )
    parser.add_argument("--by", choices=("best", "final"), default="best", help="rank by each job's best or final value")
    parser.add_argument(
        "--maximize", action="store_true", help="for a TensorBoard scalar: higher is better (evaluation values know their way)"
    )
    parser.add_argument("--out", type=Path, help="where to write PREFIX.md, PREFIX.csv, PREFIX.png (default: <sweep>/report)")
    args = parser.parse_args(argv)
    with user_errors("gan-report"):
        jobs = find_jobs(args.sweep)
        metric = args.metric or _default_metric(jobs)
        if not any(job.series(metric) for job in jobs):
            raise GanError(f"no job of {args.sweep} logged {metric!r}; logged: {', '.join(_logged(jobs)) or 'nothing yet'}")
        known = any(metric in values for values in VALUES.values())
        report = SweepReport(jobs, metric, higher_is_better(metric) if known else args.maximize, args.by)
        paths = report.write(args.out or args.sweep / "report", str(args.sweep))
        print(report.markdown(str(args.sweep)))
        print("Wrote " + ", ".join(str(path) for path in paths))


def _default_metric(jobs: list[Job]) -> str:
    """The eval.best of the first evaluated job, else DEFAULT_SCALAR."""
    for job in jobs:
        if job.evaluations:
            return OmegaConf.load(job.folder / ".hydra" / "config.yaml").eval.best
    return DEFAULT_SCALAR


def _logged(jobs: list[Job]) -> list[str]:
    return sorted({name for job in jobs for name in (*job.evaluations, *job.scalars)})


if __name__ == "__main__":
    main()
