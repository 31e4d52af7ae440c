"""Benchmark: training throughput of IQL / VDN / QMIX (recurrent, episode replay) on LBF.

Same task, network sizes, hyper-parameters and update schedule as the EPyMARL figures in
issue 6 (``Foraging-8x8-2p-2f-v3``, 50-step episodes, one update of 32 episodes per collected
episode, double Q, target copy every 200 updates, Adam 5e-4). EPyMARL shares one agent network
between the agents by default, so the compared learners share too: ``iql`` with
``share_params=True`` and GRU 128 (EPyMARL's IQL default), ``vdn_ps`` (VDN, GRU 64) and
``qmix`` (GRU 64, shared agents as in EPyMARL).

Per learner and number of seeds (vmapped in one program, as ``netmarl train`` runs them):

* **env steps/s (wall)**: the driver's compiled chunk (``jit(vmap(chunk))``: collect one
  episode, store it, one update, repeated; then a greedy evaluation of ``--eval-episodes``
  episodes), after a warm-up chunk that fills the buffer past one batch; seeds x steps / wall
  time. On a machine shared with other jobs this mostly measures the load.
* **env steps per CPU-s**: the same steps over the CPU time the process used (all threads).
  Run pinned to one core (``taskset -c 0``) it is what one single-threaded run achieves, the
  way EPyMARL runs; two such processes, one per core, give twice that on this 2-core machine
  (**machine est.**, compared with twice EPyMARL's one-run figure).
* **CPU ms/update/seed**: the update alone (as training runs it: seeds one after another, see
  ``ValueDecomposition._update_per_seed``) on sampled batches of 32 episodes, scanned
  ``--updates`` times in one call, CPU time per update and seed; **x FLOP floor (1 core)**
  divides it by the matmul FLOPs of the update at 125 GFLOP/s (one core's half of the
  issue's 250 GFLOP/s; :func:`update_flops`).
* **update share (CPU)**: updates x CPU per update / CPU of the chunk, i.e. how much of
  training is the gradient step (the rest: rollouts, buffer, evaluation).
* **peak RSS** of the process after the learner's runs (ru_maxrss, cumulative).

EPyMARL (issue 6, one thread per run; this machine kind runs two at once, one per core):
IQL (GRU 128) 690 env steps/s and 43 ms per update, VDN (GRU 64) 1,000 and 22 ms, QMIX (GRU 64)
920 and 27 ms, so the whole machine does 2x those env steps/s. Those figures come from
another machine of this kind: ``bench_epymarl_reference.py`` re-times the same kind of update
in PyTorch here, to check that the comparison is fair on the machine at hand.

The GRU recurrences and QMIX's mixer run on netmarl's native kernels (:mod:`netmarl.kernels`)
where a C++ compiler is found; ``NETMARL_NATIVE_KERNELS=0`` measures the pure-JAX code instead.
A header line gives XLA's 1024^3 matmul rate: compare figures only between runs
whose rate agrees (machines of this kind have differed by 2x).

Run: ``taskset -c 0 .venv/bin/python benchmarks/bench_value_decomposition.py`` (a few
minutes; without ``taskset`` XLA uses both cores for the large matmuls). The timed chunks
donate the train state (see :func:`time_training`).

``--machine`` (run unpinned) measures instead the whole machine's wall-clock env steps/s
for each way of laying the seeds over the two cores (:data:`LAYOUTS`): two processes pinned
one per core (half the seeds each), one process with two XLA CPU devices and the seeds
sharded over them with ``pmap``, and one vmapped process as ``netmarl train`` runs. The
processes compile first and start training together. On a machine shared with other jobs
the wall-clock figures are lower bounds; "CPU s / wall s" says how much CPU they got.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import jax
import numpy as np

from netmarl import kernels
from netmarl.algos.base import NeuralLearner, vmap_seeds
from netmarl.algos.value_decomposition import ValueDecomposition, ValueDecompositionConfig
from netmarl.buffers import buffer_sample
from netmarl.envs import make_env

TASK = "Foraging-8x8-2p-2f-v3"
# name -> (algo, config overrides, EPyMARL env steps/s of one run, EPyMARL ms per update)
LEARNERS = {
    "IQL (GRU 128)": ("iql", {"hidden": 128, "share_params": True}, 690.0, 43.0),
    "VDN (GRU 64)": ("vdn_ps", {"hidden": 64}, 1000.0, 22.0),
    "QMIX (GRU 64)": ("qmix", {"hidden": 64}, 920.0, 27.0),
}
TARGETS = {"IQL (GRU 128)": 2.5, "VDN (GRU 64)": 5.0, "QMIX (GRU 64)": 5.0}
# issue 6: ~250 GFLOP/s on large float32 matmuls over the 2 cores, so ~125 per core
PER_CORE_FLOPS = 125e9


def update_flops(vd: ValueDecomposition) -> float:
    """Matmul FLOPs of one update of one seed: agent network forward (online and target)
    and backward (twice the forward) over batch x (T + 1) steps x N agents, plus QMIX's
    mixer (hyper-networks of the state, online and target forward, online backward) over
    batch x T steps; the losses are small and left out."""
    c, h = vd.config, vd.config.hidden
    per_row = 2 * (vd.in_size * h + 3 * h * h + 3 * h * h + h * vd.num_actions)
    rows = c.batch_size * (vd.limit + 1) * vd.n
    flops = 4 * rows * per_row
    if vd.mixer is not None:
        m, s = vd.mixer, int(np.prod(vd.env.spec.state_shape))
        per_state = 2 * (s * (2 * m.hyper + 2 * m.embed) + m.hyper * m.embed * (vd.n + 1) + m.embed)
        flops += 4 * c.batch_size * vd.limit * per_state
    return flops


def matmul_gflops() -> float:
    """XLA's rate on a 1024^3 float32 matmul with this process's cores: a fingerprint of the
    machine. Machines of one kind differ (109 GFLOP/s on one core in session 6, 215 on
    2026-12-07), so figures from different machines compare only beside this one."""
    a = jax.numpy.ones((1024, 1024), jax.numpy.float32)
    product = jax.jit(lambda a: a @ a)
    product(a).block_until_ready()
    best = np.inf
    for _ in range(20):
        t0 = time.perf_counter()
        product(a).block_until_ready()
        best = min(best, time.perf_counter() - t0)
    return 2 * 1024**3 / best / 1e9


def build(algo: str, overrides: dict) -> ValueDecomposition:
    env = make_env("lbf", task=TASK)
    return ValueDecomposition(algo, env, 0.99, ValueDecompositionConfig(**overrides), None)


def time_training(learner: NeuralLearner, seeds: int, chunk_steps: int, chunks: int, eval_eps: int):
    """(env steps/s over seeds, env steps per CPU second, CPU seconds per chunk, iterations
    (= updates) per chunk and seed, compile seconds, state)."""
    trainer = learner.trainer(chunk_steps, eval_eps)
    keys = jax.random.split(jax.random.key(0), seeds)
    state = jax.jit(jax.vmap(trainer.init))(keys)
    # the state is donated: without it every chunk copies the replay buffers (5000
    # episodes, ~46 MB per seed) into fresh memory, ~13 ms of CPU per seed per chunk, which
    # the driver spends once per eval_every steps (50k on LBF: negligible) but which would
    # add ~0.5 ms per iteration to the short chunks timed here
    chunk = jax.jit(vmap_seeds(trainer.chunk), donate_argnums=0)
    t0 = time.perf_counter()
    state, metrics = chunk(state)  # compile + warm-up (fills the buffer past one batch)
    jax.block_until_ready(metrics)
    compile_s = time.perf_counter() - t0
    start = np.asarray(metrics["env_steps"])
    iterations = 0
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(chunks):
        state, metrics = chunk(state)
        metrics = jax.device_get(metrics)  # the driver fetches metrics after every chunk
        iterations += int(np.max(metrics["iterations"]))
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    # env steps actually taken (episodes that ended early count their real length)
    steps = int(np.sum(np.asarray(metrics["env_steps"]) - start))
    return steps / wall, steps / cpu, cpu / chunks, iterations / chunks, compile_s, state


def time_updates(vd: ValueDecomposition, state, updates: int) -> float:
    """CPU milliseconds per update (all seeds together), updates scanned inside one call.

    CPU time (all threads of the process), not wall time: on a shared machine the wall time
    of a compute-bound call grows with the other jobs' load, its CPU time hardly does."""
    learn, buffer = state.learner.learn, state.learner.buffer
    batch_size = vd.config.batch_size

    def many(learn, buffer, key):
        def body(learn, k):
            k_sample, k_update = jax.random.split(k)
            batch = buffer_sample(buffer, k_sample, batch_size)
            learn, metrics = vd._update_per_seed(learn, batch, k_update)
            return learn, metrics["loss"]

        return jax.lax.scan(body, learn, jax.random.split(key, updates))

    seeds = jax.tree.leaves(learn)[0].shape[0]
    fn = jax.jit(jax.vmap(many))
    keys = jax.random.split(jax.random.key(1), seeds)
    jax.block_until_ready(fn(learn, buffer, keys))  # compile
    best = np.inf
    for _ in range(3):
        c0 = time.process_time()
        jax.block_until_ready(fn(learn, buffer, keys))
        best = min(best, time.process_time() - c0)
    return 1000 * best / updates


# --- whole-machine throughput: how to use the two cores -------------------------------------

LAYOUTS = {
    # name -> one (mode, core) per process; each process trains seeds / processes seeds
    "two pinned processes": [("vmap", 0), ("vmap", 1)],
    "one process, 2 CPU devices (pmap)": [("devices", -1)],
    "one process, vmap (the driver)": [("vmap", -1)],
}


def machine_worker(spec: dict) -> None:
    """One process of :func:`machine_throughput`: compile, say ``ready``, wait for ``go`` on
    stdin, train ``chunks`` chunks and print the wall and CPU time as JSON."""
    if spec["core"] >= 0:  # before JAX starts its thread pools
        os.sched_setaffinity(0, {spec["core"]})
    # the processes of a layout compile the same program: share it through the cache
    jax.config.update(
        "jax_compilation_cache_dir", os.path.join(tempfile.gettempdir(), "netmarl_jax_cache")
    )
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    algo, overrides, _, _ = LEARNERS[spec["learner"]]
    trainer = build(algo, overrides).learner().trainer(spec["chunk_steps"], spec["eval_episodes"])
    seeds, devices = spec["seeds"], jax.local_device_count() if spec["mode"] == "devices" else 1
    keys = jax.random.split(jax.random.key(spec["core"] + 1), seeds)
    if devices > 1:  # seeds sharded over the CPU devices, vmapped within each
        keys = keys.reshape(devices, seeds // devices, *keys.shape[1:])
        state = jax.pmap(jax.vmap(trainer.init))(keys)
        chunk = jax.pmap(vmap_seeds(trainer.chunk), donate_argnums=0)
    else:
        state = jax.jit(jax.vmap(trainer.init))(keys)
        chunk = jax.jit(vmap_seeds(trainer.chunk), donate_argnums=0)
    state, metrics = chunk(state)  # compile + fill the buffer past one batch
    start = np.asarray(metrics["env_steps"])
    print("ready", flush=True)
    sys.stdin.readline()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(spec["chunks"]):
        state, metrics = chunk(state)
        metrics = jax.device_get(metrics)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    steps = int(np.sum(np.asarray(metrics["env_steps"]) - start))  # actually taken
    print(json.dumps({"steps": steps, "wall": wall, "cpu": cpu, "devices": devices}), flush=True)


def machine_throughput(layout: str, learner: str, seeds: int, args: argparse.Namespace) -> dict:
    """Env steps per second of the whole machine (wall clock) with the seeds laid out as
    ``layout``: every process compiles first, then all start training at once."""
    procs = []
    for mode, core in LAYOUTS[layout]:
        spec = {"learner": learner, "seeds": seeds // len(LAYOUTS[layout]), "mode": mode,
                "core": core, "chunk_steps": args.chunk_steps, "chunks": args.chunks,
                "eval_episodes": args.eval_episodes}  # fmt: skip
        env = dict(os.environ)
        if mode == "devices":
            env["XLA_FLAGS"] = (env.get("XLA_FLAGS", "") +
                                " --xla_force_host_platform_device_count=2").strip()  # fmt: skip
        procs.append(subprocess.Popen(
            [sys.executable, __file__, "--worker", json.dumps(spec)], env=env, text=True,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        ))  # fmt: skip
    for proc in procs:
        line = proc.stdout.readline().strip()
        if line != "ready":
            raise RuntimeError(f"worker failed before training: {line!r}")
    t0 = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    results = [json.loads(proc.stdout.readline()) for proc in procs]
    wall = time.perf_counter() - t0
    for proc in procs:
        proc.wait()
    steps = sum(r["steps"] for r in results)
    return {"steps_per_s": steps / wall, "cpu_s": sum(r["cpu"] for r in results), "wall": wall}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--worker":
        machine_worker(json.loads(sys.argv[2]))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 10])
    parser.add_argument("--chunk-steps", type=int, default=5000, help="env steps per chunk")
    parser.add_argument("--chunks", type=int, default=2, help="timed chunks")
    parser.add_argument("--eval-episodes", type=int, default=32)
    parser.add_argument("--updates", type=int, default=50, help="updates per update timing")
    parser.add_argument("--learners", nargs="+", default=list(LEARNERS), choices=list(LEARNERS))
    parser.add_argument(
        "--machine", action="store_true",
        help="instead: whole-machine wall-clock throughput of each way to lay out the seeds "
        "over the two cores (two pinned processes, one process with 2 CPU devices, one "
        "vmapped process); run it unpinned",
    )  # fmt: skip
    args = parser.parse_args()
    if args.machine:
        print(f"# load average at start: {os.getloadavg()[0]:.2f}")
        print("| learner | seeds | layout | env steps/s (wall, whole machine) "
              "| vs EPyMARL (2 runs) | target | CPU s / wall s |")  # fmt: skip
        print("|" + "---|" * 7)
        for name in args.learners:
            epy = 2 * LEARNERS[name][2]
            for seeds in args.seeds:
                for layout in LAYOUTS:
                    r = machine_throughput(layout, name, seeds, args)
                    print(
                        f"| {name} | {seeds} | {layout} | {r['steps_per_s']:,.0f} "
                        f"| {r['steps_per_s'] / epy:.1f}x | {TARGETS[name]}x "
                        f"| {r['cpu_s'] / r['wall']:.2f} |",
                        flush=True,
                    )
        print(f"# load average at end: {os.getloadavg()[0]:.2f}")
        return

    print(f"# {platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__}, {TASK}")
    print(f"# CPUs this process may use: {sorted(os.sched_getaffinity(0))}")
    native = "native kernels" if kernels.available() else "JAX"
    print(f"# GRU recurrences and QMIX's mixer: {native}")
    print(f"# XLA 1024^3 matmul here: {matmul_gflops():.0f} GFLOP/s")
    print(f"# load average at start: {os.getloadavg()[0]:.2f}")
    header = (
        "| learner | seeds | env steps/s (wall) | env steps per CPU-s | machine est. vs EPyMARL "
        "| target | CPU ms/update/seed | x FLOP floor (1 core) | update share (CPU) "
        "| compile s | peak RSS MB |"
    )
    print(header)
    print("|" + "---|" * 11)
    for name in args.learners:
        algo, overrides, epy_steps, _ = LEARNERS[name]
        vd = build(algo, overrides)
        for seeds in args.seeds:
            sps, sp_cpu, chunk_cpu, updates_per_chunk, compile_s, state = time_training(
                vd.learner(), seeds, args.chunk_steps, args.chunks, args.eval_episodes
            )
            ms = time_updates(vd, state, args.updates)
            share = updates_per_chunk * ms / 1000 / chunk_cpu
            # EPyMARL: two single-threaded runs, one per core; netmarl likewise as two
            # processes, each at its env steps per CPU second
            machine = 2 * sp_cpu / (2 * epy_steps)
            floor_ms = 1000 * update_flops(vd) / PER_CORE_FLOPS
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(
                f"| {name} | {seeds} | {sps:,.0f} | {sp_cpu:,.0f} | {machine:.1f}x "
                f"| {TARGETS[name]}x | {ms / seeds:.1f} | {ms / seeds / floor_ms:.1f}x "
                f"| {share:.0%} | {compile_s:.1f} | {rss:,.0f} |",
                flush=True,
            )
    print(f"# load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
