"""Episode rendering: frames, communication edges, GIFs and the ``netmarl render`` command."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np
import pytest
import yaml
from PIL import Image

from netmarl.cli import main
from netmarl.envs import AutoReset, HallwayState, make_env, navigation_state
from netmarl.errors import ConfigError
from netmarl.network import make_graph, make_network
from netmarl.render import (
    BACKGROUND,
    agent_pixels,
    frame,
    random_policy,
    render_episode,
    render_run,
    save_gif,
)


def _nav_state():
    # agents 0 and 1 far apart on a horizontal line, agent 2 and landmarks out of the way
    return navigation_state(
        agent_pos=np.array([[-1.0, 0.0], [1.0, 0.0], [0.0, -1.2]]),
        landmark_pos=np.array([[-1.0, 1.0], [0.0, 1.0], [1.0, 1.0]]),
    )


def _midpoint(env, state, i: int, j: int) -> tuple[int, int]:
    xy = agent_pixels(env, state)
    x, y = (xy[i] + xy[j]) / 2
    return int(round(y)), int(round(x))


def test_frame_shape_dtype_and_changes_between_steps():
    env = make_env("navigation")
    frames = render_episode(env, random_policy(env), jax.random.key(0), max_steps=3)
    assert len(frames) == 4
    for f in frames:
        assert f.dtype == np.uint8 and f.ndim == 3 and f.shape[2] == 3
        assert f.shape == frames[0].shape
        assert 300 <= f.shape[1] <= 480
    assert all(not np.array_equal(a, b) for a, b in zip(frames, frames[1:], strict=False))


@pytest.mark.parametrize("graph_edges", [[(0, 1)], [(1, 2)]])
def test_navigation_edge_drawn_only_when_in_graph(graph_edges):
    env = make_env("navigation")
    state = _nav_state()
    adj = np.zeros((3, 3), bool)
    for i, j in graph_edges:
        adj[i, j] = adj[j, i] = True
    img = frame(env, state, adjacency=adj)
    r, c = _midpoint(env, state, 0, 1)
    has_edge = bool(adj[0, 1])
    assert (tuple(img[r, c]) != BACKGROUND) == has_edge


def test_graph_argument_and_dropped_links():
    env = make_env("navigation")
    state = _nav_state()
    ring = make_graph("ring", 3)  # has the 0-1 edge
    r, c = _midpoint(env, state, 0, 1)
    assert tuple(frame(env, state, graph=ring)[r, c]) != BACKGROUND
    assert tuple(frame(env, state)[r, c]) == BACKGROUND
    # this round's adjacency overrides the base graph: a dropped link disappears
    dropped = np.asarray(ring.adjacency).copy()
    dropped[0, 1] = dropped[1, 0] = False
    assert tuple(frame(env, state, graph=ring, adjacency=dropped)[r, c]) == BACKGROUND
    with pytest.raises(ConfigError, match="adjacency"):
        frame(env, state, adjacency=np.ones((4, 4), bool))


def test_hallway_and_lbf_edges():
    hall = make_env("hallway", num_agents=2, lengths=4)
    state = HallwayState(pos=np.array([1, 4]), t=np.int32(0))
    r, c = _midpoint(hall, state, 0, 1)
    full = np.ones((2, 2), bool)
    assert tuple(frame(hall, state, adjacency=full)[r, c]) != BACKGROUND
    assert tuple(frame(hall, state, adjacency=~full)[r, c]) == BACKGROUND

    lbf = make_env("lbf", grid_size=6, num_players=2, num_food=1)
    lstate = lbf.make_state(
        np.array([[1, 1], [1, 5]]), np.array([1, 2]), np.pad([[0, 2]], ((4, 1), (3, 1)))
    )
    r, c = _midpoint(lbf, lstate, 0, 1)
    assert tuple(frame(lbf, lstate, adjacency=full)[r, c]) != BACKGROUND
    assert tuple(frame(lbf, lstate, adjacency=~full)[r, c]) == BACKGROUND


@pytest.mark.parametrize(
    "name, kwargs",
    [
        ("navigation", {"num_agents": 3, "continuous": True}),
        ("lbf", {"grid_size": 5, "num_players": 2, "num_food": 1}),
        ("hallway", {"num_agents": 3}),
    ],
)
def test_gif_per_env(tmp_path, name, kwargs):
    env = make_env(name, **kwargs)
    net = make_network("ring", env.spec.num_agents, link_drop=0.5, require_connected=False)
    frames = render_episode(env, random_policy(env), jax.random.key(1), network=net, max_steps=6)
    assert 2 <= len(frames) <= 7
    path = save_gif(frames, tmp_path / "sub" / f"{name}.gif", fps=4)
    with Image.open(path) as gif:
        assert gif.n_frames == len(frames)
        assert gif.size == (frames[0].shape[1], frames[0].shape[0])
    assert [p.name for p in path.parent.iterdir()] == [f"{name}.gif"]  # no temp file left


def test_wrapped_env_renders():
    env = AutoReset(make_env("hallway"))
    state, _ = env.reset(jax.random.key(0))
    assert frame(env, state, title="x").dtype == np.uint8


def test_non_spatial_env_is_a_config_error(tmp_path):
    env = make_env("lijia_mdp")
    state, _ = env.reset(jax.random.key(0))
    with pytest.raises(ConfigError, match="no spatial layout.*navigation, lbf, hallway"):
        frame(env, state)
    with pytest.raises(ConfigError, match="no spatial layout"):
        render_episode(env, random_policy(env), jax.random.key(0))
    with pytest.raises(ConfigError, match="no frames"):
        save_gif([], tmp_path / "x.gif")


def test_render_run_dir_errors(tmp_path):
    with pytest.raises(ConfigError, match="not a netmarl run directory"):
        render_run(tmp_path, tmp_path / "x.gif")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump({"env": "lijia_mdp"}))
    with pytest.raises(ConfigError, match="no spatial layout"):
        render_run(tmp_path, tmp_path / "x.gif")


def test_cli_render_env(tmp_path, capsys):
    out = tmp_path / "x.gif"
    args = ["render", "--env", "navigation", "--out", str(out), "--max-steps", "3"]
    assert main(args) == 0
    with Image.open(out) as gif:
        assert gif.n_frames == 4
    assert "4 frames" in capsys.readouterr().out


def test_cli_render_errors(tmp_path, capsys):
    out = str(tmp_path / "x.gif")
    assert main(["render", "--env", "lijia_mdp", "--out", out]) == 2
    assert "no spatial layout" in capsys.readouterr().err
    assert main(["render", str(tmp_path), "--out", out]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netmarl: error:") and "not a netmarl run directory" in err
    assert main(["render", "--out", out]) == 2
    assert not Path(out).exists()


def _fake_build(learner):
    from types import SimpleNamespace

    def build(config):
        env = make_env(config.env, **config.env_kwargs)
        net = make_network(config.graph, env.spec.num_agents, require_connected=False)
        return SimpleNamespace(config=config, env=env, network=net, learner=learner)

    return build


def test_render_run_uses_the_trained_policy_and_falls_back_to_random(tmp_path, monkeypatch, capsys):
    """A neural learner's run is rendered with its checkpointed greedy policy; a learner
    without one (tabular) falls back to uniform-random actions, saying so."""
    from types import SimpleNamespace

    import netmarl.run.driver as driver
    from netmarl.run.config import RunConfig

    config = RunConfig(
        algo="independent_ac", env="hallway", graph="line", seeds=2, steps=400,
        eval_every=200, eval_episodes=4, out_dir=str(tmp_path), name="iac",
    )  # fmt: skip
    driver.train(config, progress=False)
    path, n, trained = render_run(tmp_path / "iac", tmp_path / "a.gif", seed=0)
    assert trained and path.is_file() and 2 <= n <= 15

    monkeypatch.setattr(driver, "build", _fake_build(SimpleNamespace()))
    assert main(["render", str(tmp_path / "iac"), "--out", str(tmp_path / "b.gif")]) == 0
    printed = capsys.readouterr().out
    assert "uniform-random" in printed and (tmp_path / "b.gif").is_file()


def test_traffic_grid_draws_intersections_queues_and_road_edges():
    from netmarl.render import EDGE_COLOR, QUEUE_COLOR

    env = make_env("traffic_grid", rows=2, cols=3)
    state, _ = env.reset(jax.random.key(0))
    xy = agent_pixels(env, state)
    # intersection i = r * cols + c sits at column c, row r
    assert xy[1, 0] > xy[0, 0] and xy[1, 1] == xy[0, 1] and xy[3, 1] > xy[0, 1]
    with_edges = frame(env, state, graph=env.road_graph())
    without = frame(env, state)
    r, c = _midpoint(env, state, 0, 1)
    assert tuple(with_edges[r, c]) == EDGE_COLOR and tuple(without[r, c]) != EDGE_COLOR
    # a longer queue draws a longer bar: more queue-coloured pixels
    full = state._replace(queues=state.queues.at[:, :].set(env.max_queue))
    empty = state._replace(queues=state.queues.at[:, :].set(0))
    count = lambda img: int(np.all(img == QUEUE_COLOR, axis=-1).sum())  # noqa: E731
    assert count(frame(env, full)) > 2 * count(frame(env, empty))
