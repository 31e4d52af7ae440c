"""Benchmark: what each cell of an experiment file costs to train, and the whole experiment.

For every cell of the experiment (default ``experiments/dvdn_lbf.yaml``, the DVDN Table 1
reproduction) with its exact configuration (algorithm, task, graph, seeds vmapped in one
program as ``netmarl train`` runs them): the driver's compiled chunk is timed after a
warm-up chunk, and the figures are

(the timing loop is ``bench_value_decomposition.time_training``)

* **env steps per CPU-s**: env steps over the CPU time the process used. Run pinned to one
  core (``taskset -c 0``), it is what one of ``netmarl run --processes 2``'s workers
  achieves on its own core.
* **ms per iteration and seed**: one iteration = one collected episode and one update of 32
  episodes (CPU time over iterations x seeds).
* **CPU-h per cell**: the cell's ``seeds x steps`` at that rate (early in training: episodes
  run to the step limit more often later, when policies avoid ending them, so later chunks
  can be slower or faster; the evaluation episodes are left out, ~1% of the steps).

The last line sums the cells: the whole experiment's CPU hours, and its wall-clock hours on
this machine with two worker processes.

Run: ``taskset -c 0 .venv/bin/python benchmarks/bench_experiment_cost.py [experiment.yaml]
[--cells SUBSTRING ...]`` (about a minute per cell: compile and two timed chunks).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import jax
from bench_value_decomposition import time_training

from netmarl import kernels
from netmarl.run.config import RunConfig, from_dict
from netmarl.run.driver import build, with_overrides
from netmarl.run.experiment import ExperimentConfig, load_yaml, plan

DEFAULT = Path(__file__).resolve().parents[1] / "experiments" / "dvdn_lbf.yaml"


def time_cell(config: RunConfig, chunk_steps: int, chunks: int) -> tuple[float, float, float]:
    """(env steps per CPU second, CPU ms per iteration and seed, compile seconds) of the
    cell's chunk, all its seeds."""
    built = build(with_overrides(config, {"eval_every": chunk_steps, "eval_episodes": 1}))
    _, per_cpu_s, chunk_cpu, iterations, compile_s, _ = time_training(
        built.learner, config.seeds, chunk_steps, chunks, 1
    )
    return per_cpu_s, 1000 * chunk_cpu / (iterations * config.seeds), compile_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("experiment", nargs="?", default=str(DEFAULT))
    parser.add_argument("--cells", nargs="+", default=[], help="only cells whose name has one")
    parser.add_argument("--chunk-steps", type=int, default=2500, help="env steps per chunk")
    parser.add_argument("--chunks", type=int, default=2, help="timed chunks")
    parser.add_argument("--processes", type=int, default=2, help="worker processes assumed")
    args = parser.parse_args()
    raw = load_yaml(args.experiment)
    experiment = from_dict(ExperimentConfig, raw, str(args.experiment))
    cells = [c for c in plan(experiment) if not args.cells
             or any(s in c.config.name for s in args.cells)]  # fmt: skip
    recurrences = "native kernels" if kernels.available() else "JAX scans"
    print(f"# {experiment.experiment}: {len(cells)} cells; jax {jax.__version__}; "
          f"GRU recurrences: {recurrences}")  # fmt: skip
    print(f"# CPUs this process may use: {sorted(os.sched_getaffinity(0))}; "
          f"load average at start: {os.getloadavg()[0]:.2f}")  # fmt: skip
    print("| cell | seeds x steps | env steps per CPU-s | ms per iteration and seed "
          "| CPU-h per cell | compile s |")  # fmt: skip
    print("|" + "---|" * 6)
    total_h = 0.0
    for cell in cells:
        config = cell.config
        rate, per_iteration, compile_s = time_cell(config, args.chunk_steps, args.chunks)
        steps = config.seeds * config.steps
        hours = steps / rate / 3600
        total_h += hours
        print(f"| {cell.group} / {cell.label} | {config.seeds} x {config.steps:,} "
              f"| {rate:,.0f} | {per_iteration:.1f} | {hours:.2f} | {compile_s:.0f} |",
              flush=True)  # fmt: skip
    print(
        f"# total: {total_h:.1f} CPU-h, ~{total_h / args.processes:.1f} h of wall time with "
        f"{args.processes} worker processes; load average at end: {os.getloadavg()[0]:.2f}"
    )


if __name__ == "__main__":
    main()
