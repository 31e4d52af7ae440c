"""Errors netmarl raises for bad input: one readable message that names the fix."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class NetmarlError(ValueError):
    """Base class for every user-facing netmarl error."""


class ConfigError(NetmarlError):
    """A configuration value, key, or name is invalid."""


class NetworkError(NetmarlError):
    """A communication graph or weight matrix cannot do what is asked of it."""


class LocalityViolation(NetmarlError):
    """An agent's update depends on data of agents it cannot have heard from."""


def closest(name: str, choices: Iterable[str]) -> str:
    """A ' Did you mean ...?' suffix for an unknown name, or '' if nothing is close."""
    matches = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.5)
    return f" Did you mean {matches[0]!r}?" if matches else ""


def unknown_name(kind: str, name: str, choices: Iterable[str]) -> ConfigError:
    """The error for an unknown algorithm / environment / topology / ... name."""
    choices = sorted(choices)
    return ConfigError(
        f"unknown {kind} {name!r}.{closest(name, choices)} Known {kind}s: {', '.join(choices)}."
    )
