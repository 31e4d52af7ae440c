"""Typed run configuration, mapping one-to-one onto YAML files, validated before compiling.

Every config is a frozen dataclass. :func:`from_dict` builds one from a mapping and rejects,
with one readable message each, an unknown key (suggesting the closest known key) and a value
of the wrong type, so a typo never reaches XLA.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from netmarl.errors import ConfigError, closest

T = TypeVar("T")


@dataclass(frozen=True)
class RunConfig:
    """One training run: an algorithm on an environment over a network, for several seeds.

    ``seeds`` runs are vmapped inside one compiled program. Every ``eval_every`` steps the
    current policies are evaluated (exactly, for tabular learners).
    """

    algo: str = "lijia_ac"
    env: str = "lijia_mdp"
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    algo_kwargs: dict[str, Any] = field(default_factory=dict)
    graph: str = "ring"
    graph_kwargs: dict[str, Any] = field(default_factory=dict)
    weights: str = "metropolis"
    rounds: int = 1
    link_drop: float = 0.0
    random_edges: int | None = None  # time-varying: a fresh E-edge subgraph every round
    seeds: int = 10
    seed: int = 0
    steps: int = 1_000_000
    eval_every: int = 20_000
    eval_episodes: int = 32  # greedy episodes per evaluation (neural learners; tabular: exact)
    gamma: float = 0.9
    tensorboard: bool = False  # also write TensorBoard event files (needs tensorboardX)
    checkpoint_every: int = 10  # chunks between checkpoints (0: only at the end)
    out_dir: str = "runs"
    name: str | None = None

    def validate(self) -> None:
        positive = {
            "seeds": self.seeds,
            "steps": self.steps,
            "eval_every": self.eval_every,
            "eval_episodes": self.eval_episodes,
        }
        for key, value in positive.items():
            if value < 1:
                raise ConfigError(f"{key} must be >= 1, got {value}.")
        if self.eval_every > self.steps:
            raise ConfigError(
                f"eval_every ({self.eval_every}) exceeds steps ({self.steps}); "
                "lower eval_every or raise steps."
            )
        if not 0.0 <= self.gamma < 1.0:
            raise ConfigError(f"gamma must be in [0, 1), got {self.gamma}.")
        if self.eval_episodes < 1:
            raise ConfigError(f"eval_episodes must be >= 1, got {self.eval_episodes}.")
        if self.checkpoint_every < 0:
            raise ConfigError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}.")
        if self.rounds < 0:
            raise ConfigError(
                f"rounds (consensus rounds per step) must be >= 0, got {self.rounds}."
            )

    @property
    def num_chunks(self) -> int:
        return self.steps // self.eval_every


def _type_ok(value: Any, annotation: Any) -> bool:
    """Whether ``value`` fits a (simple) type annotation; ints are accepted for floats."""
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, arg) for arg in typing.get_args(annotation))
    if origin is Literal:
        return value in typing.get_args(annotation)
    if annotation is type(None):
        return value is None
    if origin is dict:
        return isinstance(value, dict)
    if origin in (list, tuple):
        return isinstance(value, list | tuple)
    if annotation is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(annotation, type):
        return isinstance(value, annotation)
    return True


def _describe(annotation: Any) -> str:
    if typing.get_origin(annotation) is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(annotation))
    return getattr(annotation, "__name__", str(annotation)).replace("typing.", "")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "config") -> T:
    """Build the dataclass ``cls`` from ``data``; unknown keys and wrong types are errors."""
    if data is not None and not isinstance(data, dict):
        raise ConfigError(
            f"{where} must be a mapping of keys to values, got {type(data).__name__}."
        )
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key, value in data.items():
        if key not in names:
            raise ConfigError(
                f"unknown key {key!r} in {where}.{closest(str(key), names)} "
                f"Known keys: {', '.join(names)}."
            )
        if not _type_ok(value, hints[key]):
            raise ConfigError(
                f"{where}: {key!r} must be {_describe(hints[key])}, got {value!r} "
                f"({type(value).__name__})."
            )
        if isinstance(value, float) and hints[key] is float:
            data[key] = float(value)
    obj = cls(**data)
    validate = getattr(obj, "validate", None)
    if callable(validate):
        validate()
    return obj


def to_dict(config: Any) -> dict[str, Any]:
    """A plain dict (YAML/JSON-ready) of a config dataclass."""
    return dataclasses.asdict(config)
