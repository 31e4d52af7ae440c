"""What every learner gives the driver, and the pieces the neural learners share.

The driver trains any learner through a :class:`Trainer` for one seed (it vmaps over seeds
and jits): ``init(key) -> state``, ``chunk(state) -> (state, metrics)`` advancing a fixed
number of environment steps and then evaluating (``metrics["return"]``), ``evaluate(state)``
(the same measure, used at step 0) and ``params(state)`` (the parameters checked for NaN/inf).
Tabular learners get theirs from :func:`netmarl.algos.tabular_base.tabular_trainer`.

A neural learner is a :class:`NeuralLearner`: ``init`` and ``iteration`` (collect
``steps_per_iteration`` environment steps, summed over its parallel environments, and
update), plus the evaluation :class:`Policy` (greedy or deterministic) that ``netmarl eval``
and ``netmarl render`` load from checkpoints. :meth:`NeuralLearner.trainer` turns it into a
:class:`Trainer`: a chunk is ``lax.scan`` over iterations, then ``eval_episodes`` greedy
episodes (vmapped) scored by their undiscounted team return.

Step accounting: a learner that plays whole padded episodes (:func:`collect_episodes`) counts
the environment steps it actually took (``env_steps(state)``, pymarl's ``t_env``); its chunk
then runs iterations until that count reaches the chunk's budget, so ``eval_every`` and
``steps`` are real environment steps for every learner. Seeds are vmapped with the axis name
:data:`SEED_AXIS` (:func:`vmap_seeds`): a seed that reached its budget idles (its iterations
are masked, cheaply, by the learner) while the others finish.

Rollouts: :func:`collect` steps E parallel environments (auto-reset) for T steps and records
:class:`Step` s ``[T, E, ...]``; :func:`collect_episodes` plays E fresh episodes of exactly
``episode_limit`` steps with a mask of the steps before each episode ended (episode replay).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from netmarl.envs.api import AutoReset, TimeStep
from netmarl.errors import ConfigError

Array = jax.Array


class Trainer(NamedTuple):
    """How the driver trains one seed of a learner (see the module docstring)."""

    init: Callable[[Array], Any]
    chunk: Callable[[Any], tuple[Any, dict[str, Array]]]
    evaluate: Callable[[Any], Array]
    params: Callable[[Any], Any]


def strong_types(tree: Any) -> Any:
    """``tree`` without weakly-typed leaves (e.g. ``jnp.full(shape, 0.5)``).

    A chunk's output state is strongly typed, so a weakly-typed initial state would make
    ``jit(chunk)`` compile twice: once for the initial state and once for every later one.
    """

    def strong(x: Any) -> Any:
        if getattr(x, "weak_type", False):
            return jax.lax.convert_element_type(x, x.dtype)
        return x

    return jax.tree.map(strong, tree)


class Policy(NamedTuple):
    """An acting policy for one environment: ``carry = init_carry()`` at every episode start,
    ``actions, carry = act(params, carry, ts, key)`` each step (``carry`` is ``()`` for
    feed-forward policies). ``ts`` is the env's TimeStep (obs [N, ...], avail_actions ...)."""

    init_carry: Callable[[], Any]
    act: Callable[[Any, Any, TimeStep, Array], tuple[Array, Any]]


def feedforward_policy(act: Callable[[Any, TimeStep, Array], Array]) -> Policy:
    """A :class:`Policy` without recurrent state from ``act(params, ts, key) -> actions``."""
    return Policy(lambda: (), lambda params, carry, ts, key: (act(params, ts, key), carry))


class NeuralLearner(NamedTuple):
    """A learner with its own parallel environments, buffers and optimisers.

    ``init(key) -> state`` (everything, env states included), ``iteration(state, key) ->
    (state, metrics)`` (collect ``steps_per_iteration`` env steps and update; metrics are
    averaged over a chunk), ``policy`` the evaluation policy and ``policy_params(state)`` its
    parameters [N-leading or shared, as ``policy.act`` expects].

    Episode-replay learners also give ``env_steps(state)``, the environment steps actually
    taken (``steps_per_iteration`` is then the most an iteration can take), and their
    ``iteration(state, key, active)`` leaves the state exactly as it was where ``active`` is
    False (buffer writes masked, not the whole state selected: see :func:`keep_if`).
    """

    name: str
    env: Any
    init: Callable[[Array], Any]
    iteration: Callable[..., tuple[Any, dict[str, Array]]]
    steps_per_iteration: int
    policy: Policy
    policy_params: Callable[[Any], Any]
    env_steps: Callable[[Any], Array] | None = None

    def trainer(self, steps_per_chunk: int, eval_episodes: int) -> Trainer:
        if self.env_steps is None:
            iterations = iterations_per_chunk(self.name, steps_per_chunk, self.steps_per_iteration)
            run_chunk = partial(self._fixed_chunk, iterations)
        else:
            run_chunk = self._budget_chunk

        def evaluate(state: NeuralTrainState) -> Array:
            returns = episode_returns(
                self.env, self.policy, self.policy_params(state.learner), state.eval_key,
                eval_episodes,
            )  # fmt: skip
            return jnp.mean(returns)

        def init(key: Array) -> NeuralTrainState:
            key_learner, key_run, key_eval = jax.random.split(key, 3)
            learner = strong_types(self.init(key_learner))
            return NeuralTrainState(learner, key_run, key_eval, jnp.int32(0))

        def chunk(state: NeuralTrainState) -> tuple[NeuralTrainState, dict[str, Array]]:
            key, key_chunk = jax.random.split(state.key)
            step = state.step + steps_per_chunk
            learner, metrics = run_chunk(state.learner, key_chunk, step)
            new_state = NeuralTrainState(
                learner, key, jax.random.fold_in(state.eval_key, step), step
            )
            metrics["return"] = evaluate(new_state)
            return new_state, metrics

        return Trainer(init, chunk, evaluate, lambda state: state.learner)

    def _fixed_chunk(
        self, iterations: int, learner: Any, key: Array, budget: Array
    ) -> tuple[Any, dict[str, Array]]:
        """``iterations`` iterations of exactly ``steps_per_iteration`` steps each."""
        learner, metrics = jax.lax.scan(self.iteration, learner, jax.random.split(key, iterations))
        metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
        metrics["env_steps"] = budget
        metrics["iterations"] = jnp.int32(iterations)
        return learner, metrics

    def _budget_chunk(
        self, learner: Any, key: Array, budget: Array
    ) -> tuple[Any, dict[str, Array]]:
        """Iterations until ``env_steps`` reaches ``budget`` (the last one may pass it by
        less than one iteration, as pymarl's ``t_env`` passes its test interval); metrics
        are means over the seed's own iterations."""
        _, shapes = jax.eval_shape(self.iteration, learner, key, jnp.bool_(True))
        sums = jax.tree.map(lambda s: jnp.zeros(s.shape, jnp.float32), shapes)

        def running(carry: tuple) -> Array:
            learner = carry[0]
            return max_over_seeds(self.env_steps(learner) < budget)  # any seed still short

        def body(carry: tuple) -> tuple:
            learner, sums, count, i = carry
            active = self.env_steps(learner) < budget
            learner, metrics = self.iteration(learner, jax.random.fold_in(key, i), active)
            sums = jax.tree.map(lambda s, m: s + jnp.where(active, m, 0.0), sums, metrics)
            return learner, sums, count + active, i + 1

        init = (learner, sums, jnp.int32(0), jnp.int32(0))
        learner, sums, count, _ = jax.lax.while_loop(running, body, init)
        metrics = jax.tree.map(lambda s: s / jnp.maximum(count, 1), sums)
        metrics["env_steps"] = self.env_steps(learner)
        metrics["iterations"] = count
        return learner, metrics


class NeuralTrainState(NamedTuple):
    learner: Any
    key: Array
    eval_key: Array
    step: Array


SEED_AXIS = "seeds"


def vmap_seeds(fn: Callable) -> Callable:
    """``jax.vmap`` over seeds, the way the driver runs a :class:`Trainer`'s functions."""
    return jax.vmap(fn, axis_name=SEED_AXIS)


def max_over_seeds(x: Array) -> Array:
    """The largest ``x`` over the seeds of a :func:`vmap_seeds` batch (the seed's own value
    when called for one seed). A loop condition or branch index that is the same for all
    seeds stays a real loop or branch under vmap; a per-seed one makes vmap run every branch
    and select, for a loop over the whole state (replay buffers included) every iteration."""
    try:
        return jax.lax.pmax(x, SEED_AXIS)
    except NameError:  # not under vmap_seeds: one seed
        return x


def one_seed_at_a_time(fn: Callable) -> Callable:
    """``fn``, run seed after seed (a loop) where the driver vmaps it over seeds, instead of
    vmapped: each seed has its own weights, so vmapping turns every matmul into a batched
    one, which XLA:CPU runs ~3x slower than the same matmuls one seed at a time.

    ``jax.custom_batching.sequential_vmap``, with the constants of ``fn``'s body (e.g. a
    consensus matrix) passed in as arguments: ``sequential_vmap`` requires its closed-over
    constants unbatched, and an enclosing cond with a per-seed predicate batches them (JAX
    0.10: ``AssertionError`` on ``consts_batched``).
    """

    def run(*args: Any) -> Any:
        closed, out_shape = jax.make_jaxpr(fn, return_shape=True)(*args)

        def body(consts: list, flat_args: list) -> list:
            return jax.core.eval_jaxpr(closed.jaxpr, consts, *flat_args)

        flat_out = jax.custom_batching.sequential_vmap(body)(
            list(closed.consts), jax.tree.leaves(args)
        )
        return jax.tree.unflatten(jax.tree.structure(out_shape), flat_out)

    return run


def trim_lengths(limit: int, levels: int = 3) -> tuple[int, ...]:
    """The lengths a batch of replayed episodes may be cut to: ``limit``, ``limit / 2``, ...
    (``levels`` of them, rounded up, ascending)."""
    return tuple(sorted({-(-limit // 2**k) for k in range(levels)}))


def on_trimmed_episodes(
    fn: Callable, limit: int, levels: int = 3, across_seeds: bool = True
) -> Callable:
    """``fn(batch, *args)`` run on ``batch`` cut after its longest episode, as pymarl trims
    a sampled batch to ``max_t_filled``: the steps after every episode of the batch ended are
    padding, masked out of every loss, and skipping them saves their compute (SMAX episodes
    end long before the limit). Shapes must be static, so the cut length is rounded up to one
    of :func:`trim_lengths` and one branch is compiled per length; the index is the largest
    over seeds, so vmap keeps a single branch (``across_seeds=False`` inside
    ``sequential_vmap``, where each seed runs on its own). ``batch`` leaves are
    ``[B, T or T + 1, ...]`` (per-step and per-state fields, T = ``limit``); ``filled [B, T]``
    marks real steps, a prefix of each episode. Losses are unchanged by the cut (tested), up
    to float rounding.
    """
    lengths = trim_lengths(limit, levels)

    def cut(batch: Any, length: int) -> Any:
        return jax.tree.map(lambda x: x[:, : length + x.shape[1] - limit], batch)

    def run(batch: Any, filled: Array, *args: Any) -> Any:
        if len(lengths) == 1:
            return fn(batch, *args)
        longest = jnp.max(jnp.sum(filled > 0, axis=1))
        # the first length >= longest
        index = sum((longest > n).astype(jnp.int32) for n in lengths[:-1])
        if across_seeds:
            index = max_over_seeds(index)
        branches = [lambda b, *a, n=n: fn(cut(b, n), *a) for n in lengths]
        return jax.lax.switch(index, branches, batch, *args)

    return run


def keep_if(active: Array, new: Any, old: Any) -> Any:
    """``new`` where ``active``, else ``old``, leaf by leaf (for small state: parameters,
    optimiser moments, counters; mask buffer writes with ``buffer_add(..., active)``)."""
    if active is True:
        return new
    return jax.tree.map(lambda n, o: jnp.where(active, n, o), new, old)


def iterations_per_chunk(name: str, steps_per_chunk: int, steps_per_iteration: int) -> int:
    """How many learner iterations fill ``steps_per_chunk`` env steps, or a clear error."""
    if steps_per_chunk % steps_per_iteration:
        raise ConfigError(
            f"{name} collects {steps_per_iteration} env steps per iteration (parallel envs x "
            f"rollout length), which does not divide eval_every = {steps_per_chunk}. Make "
            f"eval_every a multiple of {steps_per_iteration}."
        )
    return steps_per_chunk // steps_per_iteration


# --- rollouts -------------------------------------------------------------------------------


class Step(NamedTuple):
    """One recorded transition of one environment (leaves get [T, E] in front)."""

    obs: Array  # [N, *obs]
    global_state: Array
    avail_actions: Array  # [N, A]
    actions: Array
    rewards: Array  # [N] local rewards
    team_reward: Array  # []
    next_obs: Array  # [N, *obs] the true next observation (the final one if the episode ended)
    next_global_state: Array
    next_avail_actions: Array
    done: Array  # [] the episode ended here (terminated or truncated)
    terminated: Array  # [] ended in a terminal state: do not bootstrap
    extras: Any  # whatever the acting function returned besides actions (log-probs, ...)


class Runner(NamedTuple):
    """The parallel environments of a learner between iterations (leaves [E, ...])."""

    env_state: Any
    ts: TimeStep
    carry: Any


ActFn = Callable[[Any, Any, TimeStep, Array], tuple[Array, Any, Any]]
# act(params, carry, ts, key) -> (actions, carry, extras), for one environment


def runner_init(env: AutoReset, key: Array, num_envs: int, init_carry: Callable[[], Any]) -> Runner:
    env_state, ts = jax.vmap(env.reset)(jax.random.split(key, num_envs))
    carry = jax.vmap(lambda _: init_carry())(jnp.arange(num_envs))
    return Runner(env_state, ts, carry)


def collect(
    env: AutoReset,
    act: ActFn,
    params: Any,
    runner: Runner,
    key: Array,
    length: int,
    init_carry: Callable[[], Any] = lambda: (),
) -> tuple[Runner, Step]:
    """Step the runner's E environments ``length`` times; returns Steps ``[length, E, ...]``.

    Episodes restart inside (``AutoReset``), and the acting carry restarts with them.
    """

    def one_env(runner: Runner, key: Array) -> tuple[Runner, Step]:
        key_act, key_env = jax.random.split(key)
        env_state, ts, carry = runner
        actions, carry, extras = act(params, carry, ts, key_act)
        env_state, ts_next, ts_final = env.step_with_final(key_env, env_state, actions)
        step = Step(
            ts.obs, ts.global_state, ts.avail_actions, actions, ts_final.rewards,
            ts_final.team_reward, ts_final.obs, ts_final.global_state,
            ts_final.avail_actions, ts_final.done, ts_final.terminated, extras,
        )  # fmt: skip
        fresh = init_carry()
        carry = jax.tree.map(lambda f, c: jnp.where(ts_final.done, f, c), fresh, carry)
        return Runner(env_state, ts_next, carry), step

    def body(runner: Runner, key: Array) -> tuple[Runner, Step]:
        num_envs = jax.tree.leaves(runner.ts)[0].shape[0]
        return jax.vmap(one_env)(runner, jax.random.split(key, num_envs))

    return jax.lax.scan(body, runner, jax.random.split(key, length))


def collect_episodes(
    env: Any,
    act: ActFn,
    params: Any,
    key: Array,
    num_envs: int,
    init_carry: Callable[[], Any] = lambda: (),
) -> tuple[Step, Array]:
    """Play ``num_envs`` fresh episodes for exactly ``episode_limit`` steps each.

    Returns Steps ``[T, E, ...]`` and ``filled [T, E]``: True for the steps taken before (and
    including) the step where the episode ended; later steps are padding (the env is frozen,
    rewards zero) that losses must mask out, as EPyMARL's episode batches do.
    """
    limit = env.spec.episode_limit
    inner = env.env if isinstance(env, AutoReset) else env

    def one_episode(key: Array) -> tuple[Step, Array]:
        key_reset, key_run = jax.random.split(key)
        state, ts = inner.reset(key_reset)

        def body(carry: tuple, key: Array) -> tuple[tuple, tuple[Step, Array]]:
            state, ts, policy_carry, finished = carry
            key_act, key_env = jax.random.split(key)
            actions, policy_carry, extras = act(params, policy_carry, ts, key_act)
            next_state, next_ts = inner.step(key_env, state, actions)
            live = ~finished
            step = Step(
                ts.obs, ts.global_state, ts.avail_actions, actions,
                jnp.where(live, next_ts.rewards, 0.0), jnp.where(live, next_ts.team_reward, 0.0),
                next_ts.obs, next_ts.global_state, next_ts.avail_actions,
                next_ts.done | finished, next_ts.terminated | finished, extras,
            )  # fmt: skip
            # after the end, keep the final state (steps are masked padding)
            state = jax.tree.map(lambda a, b: jnp.where(finished, a, b), state, next_state)
            ts = jax.tree.map(lambda a, b: jnp.where(finished, a, b), ts, next_ts)
            return (state, ts, policy_carry, finished | next_ts.done), (step, live)

        init = (state, ts, init_carry(), jnp.bool_(False))
        _, (steps, filled) = jax.lax.scan(body, init, jax.random.split(key_run, limit))
        return steps, filled

    steps, filled = jax.vmap(one_episode, out_axes=1)(jax.random.split(key, num_envs))
    return steps, filled


def episode_returns(env: Any, policy: Policy, params: Any, key: Array, episodes: int) -> Array:
    """Undiscounted team return of ``episodes`` episodes of ``policy`` (vmapped) [episodes]."""

    def act(params: Any, carry: Any, ts: TimeStep, key: Array) -> tuple[Array, Any, Any]:
        actions, carry = policy.act(params, carry, ts, key)
        return actions, carry, ()

    steps, _ = collect_episodes(env, act, params, key, episodes, policy.init_carry)
    return jnp.sum(steps.team_reward, axis=0)


# --- checks before compiling ----------------------------------------------------------------


def require_discrete(env: Any, algo: str, alternatives: str = "") -> None:
    if not env.spec.discrete:
        hint = f" For continuous actions use {alternatives}." if alternatives else ""
        raise ConfigError(
            f"{algo} needs discrete actions, but {env.spec.name!r} has continuous actions "
            f"(Box).{hint} Or pick the env's discrete variant (e.g. continuous=False)."
        )


def require_continuous(env: Any, algo: str, alternatives: str = "") -> None:
    if env.spec.discrete:
        hint = f" For discrete actions use {alternatives}." if alternatives else ""
        raise ConfigError(
            f"{algo} needs continuous actions, but {env.spec.name!r} has "
            f"{env.spec.num_actions} discrete actions.{hint} Or pick the env's continuous "
            "variant (e.g. continuous=True)."
        )


def require_positive(config: Any, algo: str, *names: str) -> None:
    """Every named config field must be > 0 (learning rates, batch sizes, ...)."""
    for name in names:
        value = getattr(config, name)
        if not value > 0:
            raise ConfigError(f"{algo}: {name} must be > 0, got {value}.")


def require_in_range(config: Any, algo: str, name: str, low: float, high: float) -> None:
    value = getattr(config, name)
    if not low <= value <= high:
        raise ConfigError(f"{algo}: {name} must be in [{low}, {high}], got {value}.")
