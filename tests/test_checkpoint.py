"""Checkpoints: atomic, checksummed, and a SIGKILLed run resumes bit-identical."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from netmarl.cli import main
from netmarl.errors import NetmarlError
from netmarl.run import checkpoint
from netmarl.run.config import RunConfig, from_dict
from netmarl.run.driver import train

ARGS = [
    "--env", "random_mdp", "--agents", "3", "--env-arg", "num_states=6",
    "--env-arg", "num_actions=2", "--seeds", "2", "--steps", "600000",
    "--eval-every", "30000", "--checkpoint-every", "1", "-q",
]  # fmt: skip


def test_sigkilled_run_resumes_bit_identical(tmp_path):
    """Kill a run with SIGKILL mid-way, resume it, and compare with an uninterrupted run."""
    assert main(["train", *ARGS, "--out-dir", str(tmp_path), "--name", "whole"]) == 0

    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "netmarl.cli", "train", *ARGS]
    proc = subprocess.Popen(
        [*cmd, "--out-dir", str(tmp_path), "--name", "killed"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    ckpts = tmp_path / "killed" / "checkpoints"
    deadline = time.monotonic() + 120
    while not checkpoint.list_checkpoints(ckpts) and time.monotonic() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert checkpoint.list_checkpoints(ckpts), "the run never wrote a checkpoint"
    assert not (tmp_path / "killed" / "summary.json").exists(), "killed too late to test resume"
    whole, resumed = tmp_path / "whole", tmp_path / "killed"
    # the unfinished run's evaluations so far: the first rows of the finished run's metrics
    so_far = (resumed / "progress.csv").read_text().splitlines()
    assert len(so_far) >= 1 + 2 * 2  # header, the initial and >= 1 evaluation of 2 seeds
    assert (whole / "metrics.csv").read_text().splitlines()[: len(so_far)] == so_far
    assert not (whole / "progress.csv").exists()

    assert main(["train", "--resume", str(tmp_path / "killed"), "-q"]) == 0
    assert (whole / "metrics.csv").read_bytes() == (resumed / "metrics.csv").read_bytes()
    assert not (resumed / "progress.csv").exists()
    final_whole = checkpoint.list_checkpoints(whole / "checkpoints")[-1]
    final_resumed = checkpoint.list_checkpoints(resumed / "checkpoints")[-1]
    with np.load(final_whole) as a, np.load(final_resumed) as b:
        assert a.files == b.files
        for name in a.files:
            if not name.startswith("__"):  # the header holds wall times, which differ
                np.testing.assert_array_equal(a[name], b[name], err_msg=name)
        headers = [json.loads(bytes(x["__header__"]).decode()) for x in (a, b)]
    for header in headers:
        assert header["extra"].pop("wall_time_s") > 0
    assert headers[0] == headers[1]  # chunk, paths, metric history and initial returns


def small_tree():
    return {
        "params": jnp.arange(6.0).reshape(2, 3),
        "count": jnp.int32(7),
        "key": jax.random.split(jax.random.key(0), 2),
    }


def test_round_trip_keeps_keys_dtypes_and_values(tmp_path):
    tree = small_tree()
    checkpoint.save(tmp_path, 3, tree, {"note": "hi"})
    chunk, loaded, extra = checkpoint.load_latest(tmp_path, tree)
    assert chunk == 3 and extra == {"note": "hi"}
    np.testing.assert_array_equal(loaded["params"], tree["params"])
    assert loaded["count"].dtype == np.int32
    np.testing.assert_array_equal(
        jax.random.key_data(loaded["key"]), jax.random.key_data(tree["key"])
    )
    assert not list(tmp_path.glob(".tmp-*")), "temporary files must be renamed away"


def test_small_integer_arrays_are_stored_narrow_and_read_back_exactly(tmp_path):
    """Integer-valued float and int arrays go to disk as int8; everything else (fractions,
    -0.0, out-of-range values) as it is; all come back bit for bit with their dtypes."""
    n = checkpoint.NARROW_MIN_SIZE
    rng = np.random.default_rng(0)
    grid = rng.integers(-1, 16, size=n).astype(np.float32)  # like LBF observations
    negative_zero = grid.copy()
    negative_zero[7] = -0.0
    tree = {
        "obs": jnp.asarray(grid),
        "actions": jnp.asarray(rng.integers(0, 6, size=n), jnp.int32),
        "rewards": jnp.asarray(grid / 3),
        "signed_zero": jnp.asarray(negative_zero),
        "large_ints": jnp.asarray(np.arange(n), jnp.int32),
    }
    path = checkpoint.save(tmp_path, 1, tree)
    with np.load(path) as raw:
        stored = [str(raw[f"leaf{i}"].dtype) for i in range(5)]  # leaves in sorted key order
    # actions, large_ints, obs, rewards, signed_zero
    assert stored == ["int8", "int32", "int8", "float32", "float32"]
    _, loaded, _ = checkpoint.load(path, tree)
    for name, value in tree.items():
        assert loaded[name].dtype == value.dtype, name
        assert np.asarray(loaded[name]).tobytes() == np.asarray(value).tobytes(), name


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_corrupt_newest_checkpoint_falls_back_to_previous(tmp_path, damage):
    tree = small_tree()
    checkpoint.save(tmp_path, 1, tree)
    newer = {**tree, "params": tree["params"] + 1}
    path = checkpoint.save(tmp_path, 2, newer)
    data = bytearray(path.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
    else:
        data = data[: len(data) // 2]
    path.write_bytes(bytes(data))
    with pytest.warns(UserWarning, match="resuming from the older"):
        chunk, loaded, _ = checkpoint.load_latest(tmp_path, tree)
    assert chunk == 1
    np.testing.assert_array_equal(loaded["params"], tree["params"])


def test_no_good_checkpoint_is_a_clear_error(tmp_path):
    (tmp_path / "ckpt-00000001.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="unreadable"):
        checkpoint.load_latest(tmp_path, small_tree())
    with pytest.raises(checkpoint.CheckpointError, match="nothing to resume"):
        checkpoint.load_latest(tmp_path / "empty", small_tree())


def test_resume_of_a_directory_that_is_not_a_run(tmp_path, capsys):
    assert main(["train", "--resume", str(tmp_path)]) == 2
    assert "not a netmarl run directory" in capsys.readouterr().err


def test_divergence_stops_with_the_step_and_keeps_the_last_good_state(tmp_path):
    config = from_dict(
        RunConfig,
        {
            "env": "random_mdp",
            "env_kwargs": {"num_states": 6, "num_actions": 2, "num_agents": 3},
            "algo_kwargs": {"critic_lr": 50.0, "critic_lr_power": 0.0},
            "seeds": 2,
            "steps": 4000,
            "eval_every": 200,
            "out_dir": str(tmp_path),
            "name": "nan",
        },
    )
    with pytest.raises(NetmarlError, match=r"NaN/inf in the chunk ending at step [\d,]+"):
        train(config, progress=False)
    saved = checkpoint.list_checkpoints(Path(tmp_path) / "nan" / "checkpoints")
    assert saved, "the last good state must be checkpointed"
    _, state, _ = checkpoint.load(saved[-1], _like(config))
    assert all(np.all(np.isfinite(x)) for x in jax.tree.leaves(state.params))


def _like(config: RunConfig):
    from netmarl.algos.tabular_base import make_trainer
    from netmarl.run.driver import build

    built = build(config)
    init_fn, _ = make_trainer(built.env, built.learner, config.eval_every, config.gamma)
    return jax.vmap(init_fn)(jax.random.split(jax.random.key(0), config.seeds))


def test_eval_scores_the_greedy_policies_of_a_run(tmp_path, capsys):
    args = ["--env", "random_mdp", "--agents", "2", "--env-arg", "num_states=5",
            "--env-arg", "num_actions=2", "--seeds", "2", "--steps", "4000",
            "--eval-every", "2000"]  # fmt: skip
    for algo in ("lijia_ac", "joint_q"):
        name = f"run-{algo}"
        assert (
            main(["train", "--algo", algo, *args, "--out-dir", str(tmp_path), "--name", name, "-q"])
            == 0
        )
        assert main(["eval", str(tmp_path / name), "--episodes", "400"]) == 0
        result = json.loads((tmp_path / name / "eval.json").read_text())
        assert result["env_steps"] == 4000 and len(result["per_seed"]) == 2
        for row in result["per_seed"]:
            # the sampled discounted return of the greedy policy estimates its exact value
            gap = abs(row["discounted_return_mean"] - row["exact_greedy_return"])
            assert gap < 4 * row["discounted_return_stderr"] + 1e-3, row
    assert "exact greedy return" in capsys.readouterr().out
    assert main(["eval", str(tmp_path)]) == 2


def test_result_files_are_readable_as_any_new_file(tmp_path):
    """Atomic writes go through ``mkstemp`` (mode 0o600); the result must get the mode a
    plain ``open`` would give, so results can be shared."""
    from netmarl.run.driver import _atomic_write

    _atomic_write(tmp_path / "summary.json", "{}\n")
    (tmp_path / "plain.json").write_text("{}\n")
    mode = (tmp_path / "summary.json").stat().st_mode & 0o777
    assert mode == (tmp_path / "plain.json").stat().st_mode & 0o777
