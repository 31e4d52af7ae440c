"""Checkpoints: a train state pytree written atomically, with a checksum, read back exactly.

A checkpoint file ``ckpt-<chunk>.npz`` holds every leaf of the pytree as a NumPy array
(typed PRNG keys as their raw key data), a JSON header (chunk index, leaf paths, PRNG
implementations) and a SHA-256 of all of it. Large arrays whose values are all small integers
(an LBF replay buffer's observations and actions) are stored as int8 and cast back exactly on
reading, which makes a 10-seed LBF checkpoint several times smaller. It is written to a
temporary file in the same directory and renamed into place, so a crash leaves either the old
or the new file, never half of one. Reading checks the checksum and the tree structure; a
corrupt or truncated newest checkpoint is reported and the previous good one is used instead.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import jax
import numpy as np

from netmarl.errors import NetmarlError

PREFIX = "ckpt-"
KEEP = 2  # the newest checkpoints kept; older ones are removed after a successful write
NARROW_MIN_SIZE = 1 << 16  # arrays at least this large are stored as int8 where exact


class CheckpointError(NetmarlError):
    """A checkpoint is missing, corrupt, or does not match the run it should resume."""


def _is_key(leaf: Any) -> bool:
    return isinstance(leaf, jax.Array) and jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key)


def _digest(arrays: dict[str, np.ndarray], header: str) -> str:
    h = hashlib.sha256(header.encode())
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(name.encode() + str(a.dtype).encode() + str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _narrowed(a: np.ndarray) -> np.ndarray | None:
    """``a`` as int8 if that is exact (every value an integer in [-128, 127], no -0.0)."""
    if a.size < NARROW_MIN_SIZE or a.dtype.kind not in "fiu" or a.dtype.itemsize == 1:
        return None
    small = a.astype(np.int8)
    if not np.array_equal(small, a):  # out of range, fractional or NaN
        return None
    if a.dtype.kind == "f" and np.any(np.signbit(a) & (a == 0)):
        return None
    return small


def save(directory: str | Path, chunk: int, tree: Any, extra: dict[str, Any] | None = None) -> Path:
    """Atomically write ``tree`` (any pytree of arrays) as checkpoint number ``chunk``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    leaves_with_paths, _ = jax.tree_util.tree_flatten_with_path(tree)
    arrays, impls, paths, narrowed = {}, {}, [], {}
    for i, (path, leaf) in enumerate(leaves_with_paths):
        name = f"leaf{i}"
        paths.append(jax.tree_util.keystr(path))
        if _is_key(leaf):
            impls[name] = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        arrays[name] = np.asarray(jax.device_get(leaf))
        small = _narrowed(arrays[name])
        if small is not None:
            narrowed[name] = str(arrays[name].dtype)
            arrays[name] = small
    header = json.dumps(
        {"chunk": chunk, "paths": paths, "key_impls": impls, "narrowed": narrowed,
         "extra": extra or {}}
    )  # fmt: skip
    digest = _digest(arrays, header)  # over the arrays and the header text
    arrays["__header__"] = np.frombuffer(header.encode(), dtype=np.uint8)
    arrays["__sha256__"] = np.frombuffer(digest.encode(), dtype=np.uint8)

    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    target = directory / f"{PREFIX}{chunk:08d}.npz"
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp-ckpt-")
    with os.fdopen(fd, "wb") as f:
        f.write(buffer.getvalue())
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, target)
    for old in list_checkpoints(directory)[:-KEEP]:
        old.unlink(missing_ok=True)
    return target


def list_checkpoints(directory: str | Path) -> list[Path]:
    """Checkpoint files of a directory, oldest first."""
    return sorted(Path(directory).glob(f"{PREFIX}*.npz"))


def load(path: str | Path, like: Any) -> tuple[int, Any, dict[str, Any]]:
    """Read one checkpoint into the structure of ``like``; (chunk, tree, extra)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except Exception as exc:  # truncated zip, bad CRC, ...: all mean "corrupt"
        raise CheckpointError(f"checkpoint {path} is unreadable ({exc})") from None
    try:
        header = bytes(arrays.pop("__header__")).decode()
        stored = bytes(arrays.pop("__sha256__")).decode()
    except KeyError:
        raise CheckpointError(f"checkpoint {path} has no header/checksum") from None
    if _digest(arrays, header) != stored:
        raise CheckpointError(f"checkpoint {path} fails its SHA-256 checksum (corrupted)")
    meta = json.loads(header)
    like_leaves, treedef = jax.tree_util.tree_flatten(like)
    if len(like_leaves) != len(meta["paths"]):
        raise CheckpointError(
            f"checkpoint {path} holds {len(meta['paths'])} arrays but this run's state has "
            f"{len(like_leaves)}: it was written by a different configuration"
        )
    leaves = []
    for i, like_leaf in enumerate(like_leaves):
        name = f"leaf{i}"
        value = arrays[name]
        if name in meta.get("narrowed", {}):  # stored as int8, exactly
            value = value.astype(meta["narrowed"][name])
        if name in meta["key_impls"]:
            value = jax.random.wrap_key_data(value, impl=meta["key_impls"][name])
        elif np.shape(like_leaf) != value.shape:
            raise CheckpointError(
                f"checkpoint {path}: array {meta['paths'][i]} has shape {value.shape}, the run "
                f"expects {np.shape(like_leaf)}: it was written by a different configuration"
            )
        leaves.append(value)
    return meta["chunk"], jax.tree_util.tree_unflatten(treedef, leaves), meta["extra"]


def load_latest(directory: str | Path, like: Any) -> tuple[int, Any, dict[str, Any]]:
    """The newest readable checkpoint; corrupt newer ones are reported and skipped."""
    candidates = list_checkpoints(directory)
    if not candidates:
        raise CheckpointError(f"no checkpoint in {directory}: nothing to resume from")
    problems = []
    for path in reversed(candidates):
        try:
            result = load(path, like)
        except CheckpointError as exc:
            problems.append(str(exc))
            continue
        for problem in problems:
            warnings.warn(f"{problem}; resuming from the older {path.name}", stacklevel=2)
        return result
    raise CheckpointError("no usable checkpoint: " + "; ".join(problems))
