"""Does stochastic DOP's decomposed critic credit attacks on SMAX? (DOP paper 002, §5.2.)

Loads a finished ``dop`` SMAX run's newest checkpoint and, for each seed, evaluates its local
critics Q_i(s, o_i, .) (eq. 5) and its actors on the 32 episodes of its on-policy buffer. Over
the real steps where agent i can attack (some action >= 5 available; SMAX: 0-3 move, 4 stop),
prints the mean of max_attack Q_i - max_move/stop Q_i, how often the best attack beats the best
movement, and the actors' probability of attacking there (epsilon 0).

Run: ``python experiments/dop_smax_critic_check.py RUN_DIR`` (a ``dop`` run on an SMAX map).
"""

from __future__ import annotations

import sys
from pathlib import Path

import jax
import numpy as np

from netmarl.algos.dop import DecomposedCritic, DOPConfig, RecurrentActors
from netmarl.run import checkpoint
from netmarl.run.config import from_dict
from netmarl.run.driver import build, load_run_config, make_trainer

FIRST_ATTACK = 5


def check(run_dir: Path) -> None:
    config = load_run_config(run_dir)
    dop = from_dict(DOPConfig, config.algo_kwargs)
    built = build(config)
    trainer = make_trainer(built)
    like = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), config.seeds))
    chunk, state, _ = checkpoint.load_latest(run_dir / "checkpoints", like)
    env = built.learner.env
    critic = DecomposedCritic(env, tuple(dop.critic_hidden))
    actors = RecurrentActors(env, dop.actor_hidden)
    learner = state.learner
    print(f"{run_dir.name} (checkpoint after chunk {chunk})")
    for s in range(config.seeds):
        cp = jax.tree.map(lambda x, s=s: x[s], learner.critic)
        ap = jax.tree.map(lambda x, s=s: x[s], learner.actor)
        ep = jax.tree.map(lambda x, s=s: x[s], learner.on_buffer.data)  # [E, T(+1), ...]
        q, _, _ = jax.vmap(jax.vmap(lambda st, o, cp=cp: critic(cp, st, o)))(ep.state, ep.obs)
        probs = jax.vmap(lambda o, a, ap=ap: actors.episode_probs(ap, o, a, 0.0))(
            ep.obs[:, :-1], ep.avail[:, :-1]
        )
        avail = np.asarray(ep.avail[:, :-1])
        q = np.where(avail, np.asarray(q[:, :-1]), np.nan)  # [E, T, N, A]
        real = np.asarray(ep.filled).astype(bool)[..., None]
        can = avail[..., FIRST_ATTACK:].any(-1) & real  # [E, T, N]
        best_attack = np.nanmax(np.where(can[..., None], q[..., FIRST_ATTACK:], 0.0), -1)[can]
        best_move = np.nanmax(q[..., :FIRST_ATTACK], axis=-1)[can]
        p_attack = np.asarray(probs)[..., FIRST_ATTACK:].sum(-1)[can]
        print(
            f"  seed {s}: {int(can.sum())} agent-steps can attack; Q(best attack) - Q(best "
            f"move/stop) mean {np.mean(best_attack - best_move):.3f}, attack better in "
            f"{np.mean(best_attack > best_move):.2f}; pi(attack) there {p_attack.mean():.3f}"
        )


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        check(Path(arg))
