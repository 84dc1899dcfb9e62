"""Does BEGAN's convergence measure track sample quality? Spearman's rank correlation between
M_global and FID over a run's evaluations (the paper's claim that M_global falls as images improve).

    python scripts/m_global_vs_fid.py outputs/<began run>

M_global at an evaluation step is the mean the run logged for the interval ending there
(TensorBoard's began/M_global; log.every must divide eval.every); FID comes from metrics.jsonl.
Prints each pair, then rho and its p-value. A positive rho: lower M_global, lower FID.
"""

import argparse
import json
from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator


def paired_values(run_dir: Path, metric: str = "fid") -> list[tuple[int, float, float]]:
    """(step, M_global, metric) at every evaluation step of the run that has a logged M_global."""
    events = EventAccumulator(str(run_dir / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    m_global = {event.step: event.value for event in events.Scalars("began/M_global")}
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return [(line["step"], m_global[line["step"]], line[metric]) for line in lines if line["step"] in m_global]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--metric", default="fid")
    args = parser.parse_args()
    from scipy.stats import spearmanr  # here: scipy takes a second to import

    pairs = paired_values(args.run_dir, args.metric)
    for step, m, value in pairs:
        print(f"step {step:6d}  M_global {m:.4f}  {args.metric} {value:.3f}")
    rho, p = spearmanr([m for _, m, _ in pairs], [value for _, _, value in pairs])
    print(f"Spearman rho {rho:.3f} (p = {p:.3g}) over {len(pairs)} evaluations")


if __name__ == "__main__":
    main()
