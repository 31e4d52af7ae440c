"""Benchmark: two cells in two worker processes, each pinned to a core or left to the scheduler.

``netmarl run --processes 2`` trains two cells at a time. Each worker's compiled program runs
on XLA's intra-op threads (two on this 2-core machine), which hand the work back and forth;
unpinned, the four threads of two workers hop between both cores. This script trains the
same two cells of an experiment file both ways, through the real ``run_cells`` path (fresh
run directories, persistent compilation cache warmed first so neither layout pays for
compiling), and prints the wall time and env steps/s of each, in the order
pinned, unpinned, pinned, unpinned (so a drift of the machine shows as a difference between
repeats).

Run on an otherwise idle machine: ``.venv/bin/python benchmarks/bench_cell_workers.py``
(default: Medium IQL and Medium DVDN of ``experiments/dvdn_lbf.yaml``, 10 seeds, 40k steps
each; ~10 minutes).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import jax

from netmarl.run import experiment
from netmarl.run.config import from_dict
from netmarl.run.driver import with_overrides
from netmarl.run.experiment import ExperimentConfig, load_yaml, plan, select_cells

DEFAULT = Path(__file__).resolve().parents[1] / "experiments" / "dvdn_lbf.yaml"


def train_two_cells(cells: list, out: Path, pinned: bool) -> float:
    """Wall seconds for ``run_cells`` to train ``cells`` in two workers."""
    cores_for_workers = experiment._cores_for_workers
    if not pinned:
        experiment._cores_for_workers = lambda context, processes: None
    try:
        start = time.perf_counter()
        experiment.run_cells(cells, out, "bench", processes=2, progress=False)
        return time.perf_counter() - start
    finally:
        experiment._cores_for_workers = cores_for_workers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", default=str(DEFAULT))
    parser.add_argument("--cells", nargs=2, default=["Medium*/ IQL", "Medium*/ DVDN"])
    parser.add_argument("--steps", type=int, default=40_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="bench_cell_workers_"))
    jax.config.update("jax_compilation_cache_dir", str(tmp / "jax_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    config = from_dict(ExperimentConfig, load_yaml(args.file), args.file)
    cells = plan(config)
    chosen = [cells[i] for i in select_cells(cells, args.cells)]
    short = {"steps": args.steps, "eval_every": args.steps // 2, "eval_episodes": 10}
    steps = sum(cell.config.seeds * args.steps for cell in chosen)

    def fresh(out: Path) -> list:
        runs = {"out_dir": str(out / "runs"), "checkpoint_every": 1000}
        return [
            experiment.Cell(c.group, c.label, with_overrides(c.config, {**short, **runs}))
            for c in chosen
        ]

    print(
        f"# {os.cpu_count()} CPUs, jax {jax.__version__}; cells: "
        + "; ".join(f"{c.group} / {c.label}" for c in chosen)  # fmt: skip
        + f"; {args.steps:,} steps x {chosen[0].config.seeds} seeds each"
    )
    train_two_cells(fresh(tmp / "warm-up"), tmp / "warm-up", pinned=True)  # fills the cache
    print("| layout | wall s (both cells, start-up included) | env steps/s (whole machine) |")
    print("|---|---:|---:|")
    for repeat in range(args.repeats):
        for pinned in (True, False):
            out = tmp / f"{'pinned' if pinned else 'unpinned'}-{repeat}"
            wall = train_two_cells(fresh(out), out, pinned)
            layout = "one core per worker" if pinned else "unpinned"
            print(f"| {layout} | {wall:.1f} | {steps / wall:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
