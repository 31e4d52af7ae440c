"""DOP (paper 002) Fig. 2 diagnostics on the didactic game: policy-gradient variance, bias of
the Q estimates and DOP's learned local Q table, every evaluation point, for the DOP and COMA
cells of ``experiments/dop_didactic.yaml`` (same configs, seeds and steps).

    python experiments/dop_didactic_diagnostics.py [--seeds S] [--steps T]

* ``pg_variance``: trace of the covariance of the per-episode actor gradients over the
  on-policy batch (DOP) or the collected batch (COMA), averaged over agents and over the
  iterations between two evaluations (the learners log it with ``log_grad_variance``).
* ``q_bias``: mean over all 14^3 joint actions of |Q(a) - r(a)| (in this one-step game the
  true Q of every joint action is its payoff r(a)), and ``q_bias_pi`` the same error weighted
  by the current (epsilon-floored) joint policy. DOP's Q is the decomposed
  ``sum_i k_i Q_i(a_i) + b``; COMA's is its critic's agent-0 row at a_0.
* DOP's local table Q_i(a) (Fig. 2 right-bottom) at the end, per seed.

Writes ``diagnostics.csv``, ``diagnostics.png`` and ``local_q_table.md`` next to the
experiment's results (``experiments/results/dop_didactic/``). MADDPG's learner does not expose
per-sample gradients, so it is not in these diagnostics (its learning curve is in the
experiment).
"""

from __future__ import annotations

import argparse
import csv
import itertools
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.algos.base import vmap_seeds
from netmarl.algos.coma import CentralCritic
from netmarl.algos.dop import DecomposedCritic, RecurrentActors, epsilon_at
from netmarl.report.plots import plot_panels
from netmarl.run.config import from_dict
from netmarl.run.driver import build, make_trainer, with_overrides
from netmarl.run.experiment import ExperimentConfig, load_yaml, plan

HERE = Path(__file__).parent
YAML = HERE / "dop_didactic.yaml"


def diagnostics_fn(built):
    """Per-seed (q_bias, q_bias_pi, local Q [N, A]) of one learner state."""
    env = built.env
    cfg = built.algo_config
    _, ts = env.reset(jax.random.key(0))
    n, a = env.spec.num_agents, env.spec.num_actions
    joint = jnp.asarray(list(itertools.product(range(a), repeat=n)), jnp.int32)  # [A^n, N]
    payoff = env.payoff(joint)
    actors = RecurrentActors(env, cfg.actor_hidden)

    def joint_probs(learner):
        _, logits = actors.step(learner.actor, actors.init_carry(), ts.obs, ts.avail_actions)
        probs = actors.probs(logits, ts.avail_actions, epsilon_at(cfg, learner.env_steps))
        return jnp.prod(probs[jnp.arange(n), joint], axis=-1)  # [A^n]

    if built.spec.name == "dop":
        critic = DecomposedCritic(env, cfg.critic_hidden)

        def q_all(learner):
            q, k, b = critic(learner.critic, ts.global_state, ts.obs)
            taken = q[jnp.arange(n), joint]  # [A^n, N]
            return jnp.sum(k * taken, axis=-1) + b, q
    else:
        critic = CentralCritic(env, cfg.critic_hidden)

        def q_all(learner):
            rows = jax.vmap(lambda ja: critic(learner.critic, ts.global_state, ts.obs, ja))(joint)
            return rows[jnp.arange(joint.shape[0]), 0, joint[:, 0]], jnp.zeros((n, a))

    def diag(train_state):
        learner = train_state.learner
        q, local = q_all(learner)
        err = jnp.abs(q - payoff)
        return jnp.mean(err), jnp.sum(joint_probs(learner) * err), local

    return jax.jit(jax.vmap(diag))


def run_cell(run, seeds, steps):
    run = with_overrides(run, {"seeds": seeds, "steps": steps})
    built = build(run)
    trainer = make_trainer(built)
    keys = jax.random.split(jax.random.key(run.seed), run.seeds)
    state = jax.jit(jax.vmap(trainer.init))(keys)
    chunk = jax.jit(vmap_seeds(trainer.chunk))
    diag = diagnostics_fn(built)
    rows, local = [], None
    for c in range(run.num_chunks):
        state, metrics = chunk(state)
        bias, bias_pi, local = diag(state)
        for s in range(run.seeds):
            rows.append({
                "step": (c + 1) * run.eval_every, "seed": s,
                "return": float(metrics["return"][s]),
                "pg_variance": float(metrics["pg_variance"][s]),
                "q_bias": float(bias[s]), "q_bias_pi": float(bias_pi[s]),
            })  # fmt: skip
    return rows, np.asarray(local)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=None, help="default: the YAML's")
    parser.add_argument("--steps", type=int, default=None, help="default: the YAML's")
    args = parser.parse_args()
    exp = from_dict(ExperimentConfig, load_yaml(YAML), str(YAML))
    out = Path(exp.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    all_rows, tables = [], {}
    for _, label, run in plan(exp):
        if run.algo not in ("dop", "coma"):
            continue
        rows, local = run_cell(run, args.seeds or run.seeds, args.steps or run.steps)
        for r in rows:
            r["algo"] = label
        all_rows += rows
        if run.algo == "dop":
            tables[label] = local
        print(f"{label}: done ({len(rows)} rows)")
    with open(out / "diagnostics.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["algo", "step", "seed", "return", "pg_variance", "q_bias",
                                    "q_bias_pi"])  # fmt: skip
        writer.writeheader()
        writer.writerows(all_rows)
    panels = []
    for metric, title in [("pg_variance", "policy-gradient variance (trace)"),
                          ("q_bias", "mean |Q(a) - r(a)| over joint actions"),
                          ("q_bias_pi", "E_pi |Q(a) - r(a)|")]:  # fmt: skip
        curves = {}
        for label in dict.fromkeys(r["algo"] for r in all_rows):
            rows = [r for r in all_rows if r["algo"] == label]
            steps = np.unique([r["step"] for r in rows])
            seeds = max(r["seed"] for r in rows) + 1
            values = np.asarray([r[metric] for r in rows]).reshape(len(steps), seeds).T
            curves[label] = (steps, values)
        panels.append((title, curves))
    plot_panels(panels, out / "diagnostics.png", ylabel="value")
    lines = ["# DOP's learned local Q table on the didactic game (Fig. 2 right-bottom)", ""]
    for label, local in tables.items():
        target = [1, 5, 9]
        hits = (local.argmax(-1) == np.asarray(target)).all(-1)
        lines += [f"{label}: seeds whose local critics all rank the target action first: "
                  f"{int(hits.sum())} / {len(hits)}.", "", "Seed 0, Q_i(a):", "",
                  "| agent | " + " | ".join(str(a) for a in range(local.shape[-1])) + " |",
                  "|---" * (local.shape[-1] + 1) + "|"]  # fmt: skip
        for i, row in enumerate(local[0]):
            cells = [f"**{v:.2f}**" if a == target[i] else f"{v:.2f}" for a, v in enumerate(row)]
            lines.append(f"| {i} | " + " | ".join(cells) + " |")
    (out / "local_q_table.md").write_text("\n".join(lines) + "\n")
    print(f"wrote {out}/diagnostics.csv, diagnostics.png, local_q_table.md")


if __name__ == "__main__":
    main()
