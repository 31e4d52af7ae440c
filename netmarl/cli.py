"""The ``netmarl`` command line: train, run, list.

    netmarl train [--algo A --env E --graph G --seeds 10 --steps S ...]
    netmarl run FILE.yaml          # a run config or an experiment (panels x algorithms)
    netmarl report DIR             # Markdown + HTML report of a run or experiment directory
    netmarl render RUN_DIR --out FILE.gif   # animated episode (navigation, lbf, hallway)
    netmarl list                   # algorithms, environments, graphs, weight rules

Bad input (unknown names or keys, wrong types, impossible settings) ends with one line
``netmarl: error: ...`` and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from netmarl.errors import ConfigError, NetmarlError


def _parse_value(text: str) -> Any:
    """``key=value`` values are YAML scalars: 4 -> int, 0.5 -> float, true -> bool."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def _kv_pairs(pairs: list[str] | None, flag: str) -> dict[str, Any]:
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise NetmarlError(f"{flag} expects key=value, got {pair!r}.")
        key, value = pair.split("=", 1)
        out[key.strip()] = _parse_value(value)
    return out


def _train_parser(sub: Any) -> None:
    from netmarl.run.config import RunConfig

    d = RunConfig()
    p = sub.add_parser("train", help="train one algorithm on one environment (several seeds)")
    p.add_argument("--algo", default=d.algo, help=f"algorithm (default {d.algo})")
    p.add_argument("--env", default=d.env, help=f"environment (default {d.env})")
    p.add_argument("--agents", type=int, help="number of agents (sets env num_agents)")
    p.add_argument("--graph", default=d.graph, help=f"communication topology (default {d.graph})")
    p.add_argument("--weights", default=d.weights, help="weight rule (default metropolis)")
    p.add_argument("--rounds", type=int, default=d.rounds, help="consensus rounds per step")
    p.add_argument("--link-drop", type=float, default=d.link_drop, help="link-drop probability")
    p.add_argument("--random-edges", type=int, help="time-varying: E random edges per round")
    p.add_argument("--seeds", type=int, default=d.seeds, help=f"seeds, vmapped (default {d.seeds})")
    p.add_argument("--seed", type=int, default=d.seed, help="base seed")
    p.add_argument("--steps", type=int, default=d.steps, help=f"env steps (default {d.steps})")
    p.add_argument("--eval-every", type=int, default=d.eval_every, help="steps per evaluation")
    p.add_argument(
        "--eval-episodes",
        type=int,
        default=d.eval_episodes,
        help=f"greedy episodes per evaluation, neural learners (default {d.eval_episodes})",
    )
    p.add_argument("--gamma", type=float, default=d.gamma, help="discount factor")
    p.add_argument("--out-dir", default=d.out_dir, help="where run directories go")
    p.add_argument("--name", help="run directory name (default: algo-env-time)")
    p.add_argument("--env-arg", action="append", metavar="K=V", help="environment option")
    p.add_argument("--algo-arg", action="append", metavar="K=V", help="algorithm option")
    p.add_argument("--graph-arg", action="append", metavar="K=V", help="graph option")
    p.add_argument(
        "--checkpoint-every", type=int, default=d.checkpoint_every, help="chunks per checkpoint"
    )
    p.add_argument("--tensorboard", action="store_true", help="also write TensorBoard events")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue a run from its last checkpoint")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _cmd_train(args: argparse.Namespace) -> int:
    from netmarl.run.config import RunConfig, from_dict
    from netmarl.run.driver import resume_run, summary, train

    if args.resume:
        result = resume_run(args.resume, progress=not args.quiet)
        _print_summary(summary(result), result.run_dir)
        return 0
    env_kwargs = _kv_pairs(args.env_arg, "--env-arg")
    if args.agents is not None:
        env_kwargs["num_agents"] = args.agents
    config = from_dict(
        RunConfig,
        {
            "algo": args.algo,
            "env": args.env,
            "env_kwargs": env_kwargs,
            "algo_kwargs": _kv_pairs(args.algo_arg, "--algo-arg"),
            "graph": args.graph,
            "graph_kwargs": _kv_pairs(args.graph_arg, "--graph-arg"),
            "weights": args.weights,
            "rounds": args.rounds,
            "link_drop": args.link_drop,
            "random_edges": args.random_edges,
            "seeds": args.seeds,
            "seed": args.seed,
            "steps": args.steps,
            "eval_every": args.eval_every,
            "eval_episodes": args.eval_episodes,
            "checkpoint_every": args.checkpoint_every,
            "tensorboard": args.tensorboard,
            "gamma": args.gamma,
            "out_dir": args.out_dir,
            "name": args.name,
        },
        "command line",
    )
    result = train(config, progress=not args.quiet)
    _print_summary(summary(result), result.run_dir)
    return 0


def _print_summary(s: dict[str, Any], run_dir: Any) -> None:
    final = s["final_return"]
    print(
        f"\n{s['algo']} on {s['env']}: {s['seeds']} seeds x {s['steps']:,} steps "
        f"in {s['wall_time_s']:.1f} s ({s['env_steps_per_s']:,.0f} env steps/s)"
    )
    # tabular learners are scored exactly; neural ones by greedy episodes (team return)
    kind = "exact" if s["references"] else "greedy"
    print(
        f"  final {kind} return {final['mean']:>7.4f}  "
        f"(95% CI {final['ci95'][0]:.4f} .. {final['ci95'][1]:.4f})"
    )
    for name, value in s["references"].items():
        print(f"  {name + ' policy':<19} {value:.4f}")
    if "optimal" in s["references"] and "uniform" in s["references"]:
        gap = s["references"]["optimal"] - s["references"]["uniform"]
        if gap > 0:
            share = (final["mean"] - s["references"]["uniform"]) / gap
            print(f"  share of the uniform-to-optimal gap closed: {share:.1%}")
    print(f"  run directory: {run_dir}")


def _cmd_run(args: argparse.Namespace) -> int:
    from netmarl.run.config import RunConfig, from_dict
    from netmarl.run.driver import summary, train
    from netmarl.run.experiment import load_yaml, run_experiment

    data = load_yaml(args.file)
    if "panels" in data or "experiment" in data:
        out = run_experiment(
            args.file,
            progress=not args.quiet,
            force=args.force,
            processes=args.processes,
            only=args.only,
            pause_at=args.pause_at,
        )
        finished = json.loads((out / "summary.json").read_text())
        if finished:
            print(json.dumps(finished, indent=2))
            print(f"results in {out}")
        else:
            print(f"no cell has finished yet; `netmarl report {out}` shows how far each has "
                  f"come, `--up-to STEPS` compares them at a common budget")  # fmt: skip
    else:
        for flag, value in (("--only", args.only), ("--pause-at", args.pause_at)):
            if value is not None:
                raise ConfigError(
                    f"{flag} goes with an experiment file; {args.file} is one run (use "
                    "`netmarl train` and `netmarl train --resume RUN_DIR` for one run)."
                )
        result = train(from_dict(RunConfig, data, args.file), progress=not args.quiet)
        _print_summary(summary(result), result.run_dir)
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from netmarl.run.evaluate import evaluate_run

    result = evaluate_run(args.run_dir, episodes=args.episodes, seed=args.seed)
    print(
        f"greedy policies of {result['run_dir']} after {result['env_steps']:,} steps, "
        f"{result['episodes_per_seed']} episodes of {result['episode_limit']} steps per seed:"
    )
    if "mean_exact_greedy_return" not in result:  # neural learners: sampled episodes only
        print("  seed  episode return")
        for row in result["per_seed"]:
            print(
                f"  {row['seed']:>4}  {row['episode_return_mean']:>10.3f} "
                f"+- {row['episode_return_stderr']:.3f}"
            )
        print(f"written to {Path(result['run_dir']) / 'eval.json'}")
        return 0
    print("  seed  exact greedy return  discounted (sampled)  episode return (sampled)")
    for row in result["per_seed"]:
        print(
            f"  {row['seed']:>4}  {row['exact_greedy_return']:>19.4f}  "
            f"{row['discounted_return_mean']:>10.4f} +- {row['discounted_return_stderr']:.4f}  "
            f"{row['episode_return_mean']:>12.3f} +- {row['episode_return_stderr']:.3f}"
        )
    print(f"written to {Path(result['run_dir']) / 'eval.json'}")
    return 0


def _cmd_sweep(args: argparse.Namespace) -> int:
    from netmarl.run.sweep import run_sweep

    out = run_sweep(args.file, progress=not args.quiet, force=args.force, processes=args.processes)
    print(f"sweep results in {out} (summary.json, curves.csv, plot); runs in {out / 'runs'}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from netmarl.report.report import make_report, report_paths

    markdown = make_report(args.dir, up_to=args.up_to)
    print("report written:")
    for path in report_paths(markdown.parent, args.up_to):
        print(f"  {path}")
    return 0


def _cmd_render(args: argparse.Namespace) -> int:
    from netmarl.render import random_policy, render_episode, render_run, save_gif

    if (args.run_dir is None) == (args.env is None):
        raise NetmarlError("give a run directory or --env NAME (one of the two).")
    if args.run_dir is not None:
        if args.env_arg or args.graph_arg:
            raise NetmarlError("--env-arg/--graph-arg only go with --env, not a run directory.")
        path, n, trained = render_run(args.run_dir, args.out, args.seed, args.max_steps, args.fps)
        if not trained:
            print(
                "note: the run's learner offers no policy for this environment; "
                "rendering a uniform-random policy"
            )
        print(f"{n} frames written to {path}")
        return 0
    import jax

    from netmarl.envs import make_env
    from netmarl.network import make_network
    from netmarl.render import check_renderable

    env = make_env(args.env, **_kv_pairs(args.env_arg, "--env-arg"))
    check_renderable(env)
    network = None
    if args.graph != "none" and env.spec.num_agents >= 2:
        network = make_network(
            args.graph,
            num_agents=env.spec.num_agents,
            link_drop=args.link_drop,
            random_edges=args.random_edges,
            require_connected=False,
            **_kv_pairs(args.graph_arg, "--graph-arg"),
        )
    frames = render_episode(
        env,
        random_policy(env),
        jax.random.key(args.seed),
        network=network,
        max_steps=args.max_steps,
    )
    path = save_gif(frames, args.out, args.fps)
    print(f"{len(frames)} frames (uniform-random policy) written to {path}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from netmarl.algos import algorithms
    from netmarl.envs import ENVIRONMENTS
    from netmarl.network import TOPOLOGIES, WEIGHT_RULES

    print("algorithms (networked: talks only over the graph; centralized: centralized")
    print("training, exempt from the locality audit; independent: no communication):")
    specs = algorithms()
    width = max(map(len, specs))
    for name, spec in specs.items():
        tag = (
            "networked" if spec.networked else "centralized" if spec.centralized else "independent"
        )
        print(f"  {name:<{width}}  [{spec.family}, {tag}] {spec.description}")
    print("environments:")
    for name in ENVIRONMENTS:
        print(f"  {name}")
    print("graphs:       " + ", ".join(TOPOLOGIES))
    print("weight rules: " + ", ".join(WEIGHT_RULES))
    return 0


def _enable_compile_cache() -> None:
    """Reuse XLA compilations across commands (``$NETMARL_JAX_CACHE``, default
    ``~/.cache/netmarl/jax``; set it to an empty string to turn the cache off). Compiling a
    learner takes seconds; a repeated `netmarl train` then starts at once."""
    import jax

    if jax.config.jax_compilation_cache_dir:  # the caller (e.g. the test suite) chose one
        return
    path = os.environ.get("NETMARL_JAX_CACHE", str(Path.home() / ".cache" / "netmarl" / "jax"))
    if path:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.5)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="netmarl",
        description="Decentralized cooperative multi-agent RL over communication networks.",
    )
    sub = parser.add_subparsers(dest="command")
    _train_parser(sub)
    p_run = sub.add_parser("run", help="run a YAML run config or experiment")
    p_run.add_argument("file", help="YAML file (e.g. experiments/lijia_random_mdp.yaml)")
    p_run.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p_run.add_argument("--force", action="store_true", help="rerun cells that are already done")
    p_run.add_argument(
        "--only",
        nargs="+",
        metavar="PATTERN",
        help="train only the cells '<panel title> / <label>' matching these shell-style "
        "patterns, in this order (e.g. 'Medium*' '*/ IQL')",
    )
    p_run.add_argument(
        "--processes", type=int, help="an experiment's cells in this many worker processes"
    )
    p_run.add_argument(
        "--pause-at",
        type=int,
        metavar="STEPS",
        help="train each cell only to this many env steps, checkpoint it and stop; run "
        "again (with a larger or no --pause-at) to continue",
    )
    p_eval = sub.add_parser("eval", help="evaluate a run's trained policies greedily")
    p_eval.add_argument("run_dir", help="a run directory written by netmarl train")
    p_eval.add_argument("--episodes", type=int, default=100, help="episodes per seed")
    p_eval.add_argument("--seed", type=int, default=0, help="seed of the evaluation episodes")
    p_sweep = sub.add_parser("sweep", help="run a grid of configurations (resumable)")
    p_sweep.add_argument("file", help="sweep YAML (base config + grid of axes)")
    p_sweep.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p_sweep.add_argument("--force", action="store_true", help="rerun cells that are done")
    p_sweep.add_argument("--processes", type=int, help="cells in this many worker processes")
    p_report = sub.add_parser("report", help="Markdown + HTML report of a run/experiment/sweep")
    p_report.add_argument("dir", metavar="RUN_OR_EXPERIMENT_DIR", help="a directory netmarl wrote")
    p_report.add_argument(
        "--up-to",
        type=int,
        metavar="STEPS",
        help="budget-matched report: every cell that has trained this many env steps "
        "(finished or not), cut there; written as report_<STEPS>.md/.html",
    )
    p_render = sub.add_parser("render", help="animated GIF of an episode (spatial envs)")
    p_render.add_argument("run_dir", nargs="?", help="a run directory (or give --env instead)")
    p_render.add_argument("--out", required=True, metavar="FILE.gif", help="GIF to write")
    p_render.add_argument("--seed", type=int, default=0, help="seed of the episode")
    p_render.add_argument("--env", help="render this environment (random policy), no run dir")
    p_render.add_argument("--env-arg", action="append", metavar="K=V", help="environment option")
    p_render.add_argument("--graph", default="ring", help="topology drawn with --env ('none')")
    p_render.add_argument("--graph-arg", action="append", metavar="K=V", help="graph option")
    p_render.add_argument("--link-drop", type=float, default=0.0, help="link-drop probability")
    p_render.add_argument("--random-edges", type=int, help="time-varying: E edges per step")
    p_render.add_argument("--max-steps", type=int, help="stop after this many steps")
    p_render.add_argument("--fps", type=float, default=5, help="frames per second (default 5)")
    sub.add_parser("list", help="list algorithms, environments, graphs and weight rules")

    args = parser.parse_args(argv)
    command = args.command or "train"
    if args.command is None:  # plain `netmarl` behaves like `netmarl train`
        args = parser.parse_args(["train", *(argv or [])])
    handlers = {
        "train": _cmd_train,
        "run": _cmd_run,
        "sweep": _cmd_sweep,
        "eval": _cmd_eval,
        "report": _cmd_report,
        "render": _cmd_render,
        "list": _cmd_list,
    }
    try:
        _enable_compile_cache()
        return handlers[command](args)
    except NetmarlError as exc:
        print(f"netmarl: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("netmarl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
