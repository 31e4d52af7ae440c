"""Benchmark: Li & Jia Algorithm 1 (``lijia_ac``) on the N = 5 random MDP, JAX vs a NumPy loop.

The MDP is ``make_env("lijia_mdp", num_agents=5)``: 100 states, 3 actions per agent, 243 joint
actions, materialised tables, gamma 0.9; the learner has the default ``LiJiaACConfig``.

* **JAX**: the library's own trainer, driven exactly like ``netmarl.run.driver.train``:
  ``make_trainer`` then ``jax.jit(jax.vmap(chunk_fn))`` over seeds, each call a chunk of
  ``--chunk-steps`` environment steps followed by the exact evaluation, metrics fetched to the
  host after every chunk. Compilation is timed separately and excluded from the throughput.
* **NumPy**: :func:`numpy_lijia_ac`, the same algorithm as a plain per-step Python loop over
  NumPy arrays (vectorised over the agents, float64); several seeds run one after another.

Throughput is env steps per second summed over seeds (seeds x steps / wall time), the best of
``--repeats`` rounds; each round times every configuration once, so a burst of load from
another process hits them alike. Two checks that both implement the same algorithm: the exact
discounted return of the final policies after the same number of steps (independent seeds),
and the policy tables of both after a few thousand steps fed the very same uniforms.

Run: ``.venv/bin/python benchmarks/bench_lijia_tabular.py`` (about two minutes on 2 CPU cores).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Iterable

import jax
import jax.numpy as jnp
import numpy as np

from netmarl.algos.lijia_tabular import LiJiaACConfig, make_central_ac, make_lijia_ac
from netmarl.algos.tabular_base import Transition, make_trainer
from netmarl.algos.tabular_q import make_iql, make_joint_q
from netmarl.envs import evaluate_product_policy, make_env

GAMMA = 0.9
TARGET_SPEEDUP = 50.0  # JAX with 10 seeds vs the NumPy loop with 10 seeds


# --------------------------------------------------------------------------- NumPy baseline


def numpy_tables(env) -> tuple[np.ndarray, np.ndarray]:
    """The CDF of every row of P ``[S, A^N, S]`` and the shared reward ``[S, A^N]`` (float64),
    computed once so that each step only searches a row."""
    p, r = (np.asarray(table, np.float64) for table in env.dense_tables())
    return np.cumsum(p, axis=-1), r[..., 0]


def numpy_lijia_ac(
    env,
    tables: tuple[np.ndarray, np.ndarray],
    cfg: LiJiaACConfig,
    steps: int,
    seed: int,
    uniforms: np.ndarray | None = None,
) -> np.ndarray:
    """Algorithm 1 (team reward) as a plain NumPy loop; returns the final ``zeta [N, S, A]``.

    Per step, as in ``netmarl.algos.lijia_tabular``: every agent samples ``a^i ~ pi^i(s)``
    (softmax of ``zeta^i[s]``, eq. 6); ``s'`` is drawn from the row ``P(s, a)`` of the
    materialised tables and ``r = R(s, a)`` (+ the env's reward noise, if any); critic eq. (7)
    with a freshly sampled ``a~^i ~ pi^i(s')``; actor eq. (32)-(34) with the step sizes
    ``base / (1 + n)^power``; the episode restarts from a uniform state every
    ``episode_limit`` steps. Every categorical is sampled by inverting its CDF with one
    uniform, like the JAX code. The uniforms of 4096 steps are drawn at a time, or taken from
    ``uniforms [steps, 2N + 3]`` (columns ``a^1..a^N | s' | a~^1..a~^N | reset | noise``).
    """
    cdf, reward = tables
    n, num_s, num_a = env.num_agents, env.num_states, env.num_actions
    noise, limit = env.reward_noise, env.episode_limit
    rng = np.random.default_rng(seed)
    s, t = min(int(rng.random() * num_s), num_s - 1), 0  # uniform initial state

    q = rng.uniform(-1.0, 1.0, (n, num_s, num_a)) * cfg.q_init_scale
    zeta = np.zeros((n, num_s, num_a))
    critic_visits = np.zeros((n, num_s, num_a))
    actor_visits = np.zeros((n, num_s))
    agents = np.arange(n)
    radix = num_a ** np.arange(n - 1, -1, -1)  # joint index, agent 0 most significant

    def policy(s: int) -> np.ndarray:  # pi^i(s, .) for every agent, [N, A]
        e = np.exp(zeta[:, s] - zeta[:, s].max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def sample(pi: np.ndarray, u: np.ndarray) -> np.ndarray:  # one action per row of pi
        return np.sum(np.cumsum(pi, axis=1)[:, :-1] <= u[:, None], axis=1)

    def draws_in_blocks() -> Iterable[np.ndarray]:
        for start in range(0, steps, 4096):
            yield from rng.random((min(4096, steps - start), 2 * n + 3))

    for u in draws_in_blocks() if uniforms is None else uniforms[:steps]:
        pi_s = policy(s)
        a = sample(pi_s, u[:n])
        joint = a @ radix
        row = cdf[s, joint]
        s_next = min(int(np.searchsorted(row, u[n] * row[-1], side="right")), num_s - 1)
        r = reward[s, joint] + noise * (2.0 * u[2 * n + 2] - 1.0)

        # Policy evaluation, eq. (7).
        a_next = sample(policy(s_next), u[n + 1 : 2 * n + 1])
        alpha = cfg.critic_lr / (1.0 + critic_visits[agents, s, a]) ** cfg.critic_lr_power
        td = r + GAMMA * q[agents, s_next, a_next] - q[agents, s, a]
        q[agents, s, a] += alpha * td
        critic_visits[agents, s, a] += 1

        # Policy improvement, eq. (32)-(34).
        beta = cfg.actor_lr / (1.0 + actor_visits[:, s]) ** cfg.actor_lr_power
        q_s = q[:, s]
        v = np.sum(pi_s * q_s, axis=1, keepdims=True)  # eq. (32)
        zeta_s = zeta[:, s] + beta[:, None] * pi_s * (q_s - v)  # eq. (33)
        zeta[:, s] = np.clip(zeta_s, cfg.zeta_min, cfg.zeta_max)  # eq. (34)
        actor_visits[:, s] += 1

        t += 1
        if t >= limit:  # truncated episode: restart from the uniform initial distribution
            s, t = min(int(u[2 * n + 1] * num_s), num_s - 1), 0
        else:
            s = s_next
    return zeta


def time_numpy(env, tables, cfg, seeds: int, steps: int) -> tuple[float, list[np.ndarray]]:
    """Wall time of ``seeds`` seeds run one after another, and their final zetas."""
    start = time.perf_counter()
    zetas = [numpy_lijia_ac(env, tables, cfg, steps, seed) for seed in range(seeds)]
    return time.perf_counter() - start, zetas


# --------------------------------------------------------------------------- JAX (the library)


class JaxRunner:
    """The library's trainer for ``seeds`` seeds, compiled and driven like the driver."""

    def __init__(self, env, learner, seeds: int, chunk_steps: int):
        init_fn, chunk_fn = make_trainer(env, learner, chunk_steps, GAMMA)
        self.env_steps_per_chunk = seeds * chunk_steps
        self.state = jax.jit(jax.vmap(init_fn))(jax.random.split(jax.random.key(0), seeds))
        start = time.perf_counter()
        self.chunk = jax.jit(jax.vmap(chunk_fn)).lower(self.state).compile()
        self.compile_s = time.perf_counter() - start
        self.run(1)  # the first run of a compiled program is not timed

    def run(self, chunks: int) -> float:
        """Wall time of ``chunks`` chunks, metrics fetched after each one like the driver."""
        start = time.perf_counter()
        for _ in range(chunks):
            self.state, metrics = self.chunk(self.state)
            jax.device_get(metrics)
        return time.perf_counter() - start


def jax_final_returns(env, learner, seeds: int, steps: int) -> np.ndarray:
    """Exact returns of the JAX policies after ``steps`` steps (one chunk), one per seed."""
    init_fn, chunk_fn = make_trainer(env, learner, steps, GAMMA)
    state = jax.vmap(init_fn)(jax.random.split(jax.random.key(1), seeds))
    _, metrics = jax.jit(jax.vmap(chunk_fn))(state)
    return np.asarray(metrics["return"])


# --------------------------------------------------------------------------- checks


def exact_return(env, zeta: np.ndarray) -> float:
    probs = jax.nn.softmax(jnp.asarray(zeta, jnp.float32), axis=-1)
    return float(evaluate_product_policy(env, probs, GAMMA).ret)


def same_uniforms_gap(env, tables, learner, cfg: LiJiaACConfig, steps: int) -> float:
    """Max |zeta_NumPy - zeta_JAX| after ``steps`` steps fed the very same uniforms.

    The JAX side is the library's own step functions (``learner.act`` / ``learner.update``,
    ``env.step_from_uniforms`` / ``env.reset_from_uniforms``) in a ``lax.scan``.
    """
    if cfg.q_init_scale != 0.0:
        raise ValueError("the same-uniforms check needs Q_0 = 0 on both sides")
    n = env.num_agents
    uniforms = np.random.default_rng(123).random((steps, 2 * n + 3))
    zeta_numpy = numpy_lijia_ac(env, tables, cfg, steps, seed=0, uniforms=uniforms)
    s0 = min(int(np.random.default_rng(0).random() * env.num_states), env.num_states - 1)
    noise_columns = slice(2 * n + 2, 2 * n + 1 + env.step_uniforms)  # empty without noise

    def step(carry, u):
        params, state = carry
        s = env.state_index(state)
        actions = learner.act(params, s, u[:n])
        u_env = jnp.concatenate([u[n : n + 1], u[noise_columns]])
        next_state, ts = env.step_from_uniforms(u_env, state, actions)
        s_next = env.state_index(next_state)
        tr = Transition(s, actions, ts.rewards, ts.team_reward, s_next, ts.terminated)
        params, _ = learner.update(params, tr, u[n + 1 : 2 * n + 1])
        reset, _ = env.reset_from_uniforms(u[2 * n + 1 : 2 * n + 2])
        next_state = jax.tree.map(lambda r, x: jnp.where(ts.done, r, x), reset, next_state)
        return (params, next_state), None

    state, _ = env.reset_from_uniforms(jnp.array([(s0 + 0.5) / env.num_states], jnp.float32))
    run = jax.jit(lambda params, state, u: jax.lax.scan(step, (params, state), u)[0])
    params, _ = run(learner.init(jax.random.key(0)), state, jnp.asarray(uniforms, jnp.float32))
    return float(np.abs(zeta_numpy - np.asarray(params.zeta)).max())


# --------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-steps", type=int, default=50_000, help="JAX steps per chunk")
    parser.add_argument("--chunks", type=int, default=4, help="JAX chunks per timing")
    parser.add_argument("--numpy-steps", type=int, default=20_000, help="NumPy steps per seed")
    parser.add_argument("--repeats", type=int, default=3, help="timing rounds (best kept)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 10])
    parser.add_argument(
        "--one-core",
        action="store_true",
        help="pin the process to one CPU core (XLA CPU then runs every kernel on one thread)",
    )
    parser.add_argument(
        "--other-learners",
        action="store_true",
        help="also time central_ac, joint_q and tabular_iql (JAX only, the largest --seeds)",
    )
    args = parser.parse_args()
    if args.one_core:  # before JAX starts its thread pool, which inherits the affinity
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})

    env = make_env("lijia_mdp", num_agents=5)
    cfg = LiJiaACConfig()
    learner = make_lijia_ac(env, GAMMA, cfg)
    tables = numpy_tables(env)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPU cores "
        f"({len(os.sched_getaffinity(0))} used), {platform.system()}; "
        f"python {platform.python_version()}, jax {jax.__version__}, numpy {np.__version__}, "
        f"JAX device {jax.devices()[0].platform}"
    )
    print(
        f"env: lijia_mdp N={env.num_agents}, S={env.num_states}, A={env.num_actions} "
        f"({env.num_joint} joint actions), gamma {GAMMA}; {cfg}"
    )
    print(
        f"JAX: {args.chunks} chunks x {args.chunk_steps:,} steps per seed; NumPy: "
        f"{args.numpy_steps:,} steps per seed; best of {args.repeats} rounds\n"
    )

    runners = {seeds: JaxRunner(env, learner, seeds, args.chunk_steps) for seeds in args.seeds}
    numpy_time = dict.fromkeys(args.seeds, np.inf)
    jax_time = dict.fromkeys(args.seeds, np.inf)
    zetas = {}
    for _ in range(args.repeats):
        for seeds in args.seeds:
            elapsed, zetas[seeds] = time_numpy(env, tables, cfg, seeds, args.numpy_steps)
            numpy_time[seeds] = min(numpy_time[seeds], elapsed)
            jax_time[seeds] = min(jax_time[seeds], runners[seeds].run(args.chunks))
    numpy_rate = {seeds: seeds * args.numpy_steps / numpy_time[seeds] for seeds in args.seeds}
    jax_rate = {
        seeds: runners[seeds].env_steps_per_chunk * args.chunks / jax_time[seeds]
        for seeds in args.seeds
    }

    header = ("implementation", "seeds", "env steps/s", "vs NumPy", "compile")
    print(f"{header[0]:22s} {header[1]:>5s} {header[2]:>13s} {header[3]:>9s} {header[4]:>8s}")
    for seeds in args.seeds:
        print(f"{'NumPy loop':22s} {seeds:5d} {numpy_rate[seeds]:13,.0f} {1.0:8.1f}x {'-':>8s}")
    for seeds in args.seeds:
        speedup = jax_rate[seeds] / numpy_rate[seeds]
        print(
            f"{'JAX jit(vmap(chunk))':22s} {seeds:5d} {jax_rate[seeds]:13,.0f} {speedup:8.1f}x "
            f"{runners[seeds].compile_s:7.1f}s"
        )
    if 10 in args.seeds:
        ratio = jax_rate[10] / numpy_rate[10]
        verdict = "met" if ratio >= TARGET_SPEEDUP else "NOT met"
        print(
            f"\nJAX 10 seeds vs NumPy 10 seeds: {ratio:.1f}x "
            f"(target {TARGET_SPEEDUP:.0f}x: {verdict})"
        )

    # Learning check: exact return of the final policies after the same number of steps.
    seeds = max(args.seeds)
    numpy_returns = np.array([exact_return(env, z) for z in zetas[seeds]])
    jax_returns = jax_final_returns(env, learner, seeds, args.numpy_steps)
    uniform = exact_return(env, np.zeros((env.num_agents, env.num_states, env.num_actions)))
    se = np.sqrt(numpy_returns.var(ddof=1) / seeds + jax_returns.var(ddof=1) / seeds)
    gap = abs(numpy_returns.mean() - jax_returns.mean())
    print(
        f"\nlearning check after {args.numpy_steps:,} steps, exact return over {seeds} seeds "
        f"(uniform policy: {uniform:.3f}):\n"
        f"  NumPy {numpy_returns.mean():.3f} +- {numpy_returns.std(ddof=1):.3f} (sd)\n"
        f"  JAX   {jax_returns.mean():.3f} +- {jax_returns.std(ddof=1):.3f} (sd)\n"
        f"  difference {gap:.3f} = {gap / se:.1f} standard errors: "
        f"{'within noise' if gap <= 3 * se else 'MISMATCH'}"
    )
    if hasattr(env, "step_from_uniforms"):  # the library's uniform-driven step functions
        steps = min(args.numpy_steps, 5000)
        gap = same_uniforms_gap(env, tables, learner, cfg, steps)
        print(
            f"  fed the same uniforms for {steps:,} steps, the two policy tables differ by at "
            f"most {gap:.1e} (float32 vs float64): "
            f"{'same algorithm' if gap < 1e-3 else 'DIFFERENT'}"
        )

    if args.other_learners:
        seeds = max(args.seeds)
        print(f"\nother tabular learners on the same MDP, JAX, {seeds} seeds (default configs):")
        for make in (make_central_ac, make_joint_q, make_iql):
            runner = JaxRunner(env, make(env, GAMMA), seeds, args.chunk_steps)
            best = min(runner.run(args.chunks) for _ in range(args.repeats))
            rate = runner.env_steps_per_chunk * args.chunks / best
            print(f"  {make.__name__[5:]:12s} {rate:13,.0f} env steps/s")


if __name__ == "__main__":
    main()
