"""The algorithm registry: name -> how to build it, its config class and what it needs."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from netmarl.errors import unknown_name


@dataclass(frozen=True)
class AlgoSpec:
    name: str
    make: Callable[..., Any]  # make(env, gamma, config, network) -> learner
    config_cls: type
    # "tabular", "actor_critic", "value_decomposition", "dop": tabular learners are trained
    # and evaluated exactly on finite MDPs; the others are NeuralLearners
    family: str
    networked: bool  # communicates over the graph (subject to the locality audit)
    description: str
    # centralized training (a shared critic/mixer sees every agent): exempt from the audit
    centralized: bool = False


def _tabular_specs() -> dict[str, AlgoSpec]:
    from netmarl.algos.lijia_tabular import LiJiaACConfig, make_central_ac, make_lijia_ac
    from netmarl.algos.tabular_q import QLearningConfig, make_iql, make_joint_q

    return {
        "lijia_ac": AlgoSpec(
            "lijia_ac", lambda env, gamma, cfg, net: make_lijia_ac(env, gamma, cfg, net),
            LiJiaACConfig, "tabular", True,
            "Li & Jia Algorithm 1: decentralized tabular actor-critic (paper 003, eq. 6-7, 32-34)",
        ),
        "central_ac": AlgoSpec(
            "central_ac", lambda env, gamma, cfg, net: make_central_ac(env, gamma, cfg),
            LiJiaACConfig, "tabular", False,
            "centralized actor-critic: Algorithm 1 with one learner owning the joint action",
            centralized=True,
        ),
        "joint_q": AlgoSpec(
            "joint_q", lambda env, gamma, cfg, net: make_joint_q(env, gamma, cfg),
            QLearningConfig, "tabular", False,
            "joint Q-learning: one Q-table over the joint action (paper 003 baseline)",
            centralized=True,
        ),
        "tabular_iql": AlgoSpec(
            "tabular_iql", lambda env, gamma, cfg, net: make_iql(env, gamma, cfg),
            QLearningConfig, "tabular", False,
            "independent tabular Q-learning, one Q^i(s, a^i) per agent (Tan 1993)",
        ),
    }  # fmt: skip


def _actor_critic_specs() -> dict[str, AlgoSpec]:
    from netmarl.algos.independent_ac import IndependentACConfig, make_independent_ac

    return {
        "independent_ac": AlgoSpec(
            "independent_ac", lambda env, gamma, cfg, net: make_independent_ac(env, gamma, cfg),
            IndependentACConfig, "actor_critic", False,
            "independent advantage actor-critic per agent on its own observation and reward",
        ),
    }  # fmt: skip


# Modules that define ``algo_specs() -> dict[str, AlgoSpec]`` (one per algorithm family),
# imported when the registry is first used so that importing netmarl stays cheap.
_FAMILY_MODULES: tuple[str, ...] = (
    "netmarl.algos.value_decomposition",
    "netmarl.algos.dop",
    "netmarl.algos.coma",
    "netmarl.algos.networked_ac",
    "netmarl.algos.value_propagation",
    "netmarl.algos.lijia_neural",
    "netmarl.algos.maddpg",
)


def algorithms() -> dict[str, AlgoSpec]:
    specs = {**_tabular_specs(), **_actor_critic_specs()}
    for module in _FAMILY_MODULES:
        specs.update(importlib.import_module(module).algo_specs())
    return specs


def get_algo(name: str) -> AlgoSpec:
    specs = algorithms()
    if name not in specs:
        raise unknown_name("algorithm", name, specs)
    return specs[name]
