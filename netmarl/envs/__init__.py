"""Multi-agent environments (pure JAX) and the registry ``make_env``.

Names: ``"random_mdp"`` (generic :class:`RandomNetworkedMDP`), ``"lijia_mdp"`` (Li & Jia §V
preset, N = 4), ``"zhang_mdp"`` (Zhang et al. 2018 / Value Propagation preset, N = 10),
``"didactic"`` (DOP §5.1), ``"hallway"`` (DOP App. F) and ``"navigation"`` (alias
``"simple_spread"``: MPE cooperative navigation, mpe2 ``simple_spread_v3`` physics).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from netmarl.envs.api import (
    ActionSpace,
    AutoReset,
    Box,
    Discrete,
    Env,
    EnvSpec,
    TimeStep,
    make_timestep,
)
from netmarl.envs.didactic import DidacticGame, DidacticState
from netmarl.envs.hallway import Hallway, HallwayState
from netmarl.envs.lbf import LevelBasedForaging
from netmarl.envs.navigation import CooperativeNavigation, NavigationState, navigation_state
from netmarl.envs.particles import Aggregation, Mill
from netmarl.envs.random_mdp import RandomMDPState, RandomNetworkedMDP, lijia_mdp, zhang_mdp
from netmarl.envs.smax import SMAX  # jaxmarl is imported only when an SMAX env is built
from netmarl.envs.tabular import (
    PolicyValue,
    TabularMDP,
    evaluate_joint_policy,
    evaluate_product_policy,
    greedy_probs,
    joint_actions,
    joint_index,
    product_to_joint,
)
from netmarl.envs.traffic import TrafficGrid
from netmarl.errors import ConfigError, closest, unknown_name

ENVIRONMENTS: dict[str, Callable[..., Any]] = {
    "random_mdp": RandomNetworkedMDP,
    "lijia_mdp": lijia_mdp,
    "zhang_mdp": zhang_mdp,
    "didactic": DidacticGame,
    "hallway": Hallway,
    "navigation": CooperativeNavigation,
    "simple_spread": CooperativeNavigation,
    "lbf": LevelBasedForaging,
    "traffic_grid": TrafficGrid,
    "smax": SMAX,
    "aggregation": Aggregation,
    "mill": Mill,
}


def make_env(name: str, **kwargs: Any) -> Env:
    """Build the environment registered as ``name`` with keyword arguments ``kwargs``.

    Raises :class:`~netmarl.errors.ConfigError` for an unknown name or keyword, or a bad value.
    """
    if name not in ENVIRONMENTS:
        raise unknown_name("environment", name, ENVIRONMENTS)
    ctor = ENVIRONMENTS[name]
    params = [p for p in inspect.signature(ctor).parameters if p not in ("self", "name")]
    for key in kwargs:
        if key not in params:
            raise ConfigError(
                f"environment {name!r} has no option {key!r}.{closest(key, params)} "
                f"Options: {', '.join(params)}."
            )
    try:
        return ctor(**kwargs)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"bad options for environment {name!r}: {exc}") from exc


__all__ = [
    "ENVIRONMENTS",
    "ActionSpace",
    "AutoReset",
    "Box",
    "CooperativeNavigation",
    "DidacticGame",
    "DidacticState",
    "Discrete",
    "Env",
    "EnvSpec",
    "Hallway",
    "HallwayState",
    "NavigationState",
    "PolicyValue",
    "RandomMDPState",
    "RandomNetworkedMDP",
    "TabularMDP",
    "TimeStep",
    "evaluate_joint_policy",
    "evaluate_product_policy",
    "greedy_probs",
    "joint_actions",
    "joint_index",
    "lijia_mdp",
    "make_env",
    "make_timestep",
    "navigation_state",
    "product_to_joint",
    "zhang_mdp",
]
