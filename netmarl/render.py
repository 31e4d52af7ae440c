"""Episode rendering: one RGB frame per step of an environment with a spatial layout.

    img = frame(env, state, graph=network.graph)                 # [H, W, 3] uint8
    frames = render_episode(env, random_policy(env), key, network=network)
    save_gif(frames, "episode.gif", fps=5)

Renderable environments: ``navigation`` (agents as numbered discs, landmarks as crosses),
``lbf`` (grid, foods and players with their levels) and ``hallway`` (one corridor row per
agent, goal cell at the left). The communication graph is drawn as lines between the agents;
for a time-varying network :func:`render_episode` draws each step's own adjacency
(``Network.round_adjacency``), so dropped links disappear from that frame.

Frames are drawn with Pillow (no matplotlib figure per frame). A policy is any
``policy_fn(key, ts) -> actions``; :func:`random_policy` is the uniform-random one. A learner
that can act in a spatial environment plugs into ``netmarl render RUN_DIR`` through
:func:`policy_for_render`.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from netmarl.envs.api import Box, TimeStep
from netmarl.envs.hallway import Hallway
from netmarl.envs.lbf import LevelBasedForaging
from netmarl.envs.navigation import AGENT_SIZE, CooperativeNavigation
from netmarl.envs.traffic import TrafficGrid
from netmarl.errors import ConfigError

PolicyFn = Callable[[jax.Array, TimeStep], jax.Array]

RENDERABLE = ("navigation", "lbf", "hallway", "traffic_grid")
SIZE = 400  # frame width in pixels
TITLE_H = 20  # title strip height
NAV_LIMIT = 1.5  # navigation: half-width of the view, grown to fit every agent

BACKGROUND = (255, 255, 255)
EDGE_COLOR = (70, 130, 180)
EDGE_WIDTH = 2
GRID_COLOR = (200, 200, 200)
TEXT_COLOR = (0, 0, 0)
LANDMARK_COLOR = (90, 90, 90)
FOOD_COLOR = (60, 160, 60)
GOAL_COLOR = (255, 215, 0)
AGENT_COLORS = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


_SPATIAL = (CooperativeNavigation, LevelBasedForaging, Hallway, TrafficGrid)


def _unwrap(env: Any) -> Any:
    """The base environment under wrappers such as :class:`~netmarl.envs.api.AutoReset`."""
    seen = 0
    while not isinstance(env, _SPATIAL):
        inner = getattr(env, "env", None)
        if inner is None or seen > 10:
            break
        env, seen = inner, seen + 1
    return env


def check_renderable(env: Any) -> Any:
    """The renderable base env of ``env``; ConfigError if it has no spatial layout."""
    base = _unwrap(env)
    if not isinstance(base, _SPATIAL):
        name = getattr(getattr(env, "spec", None), "name", type(env).__name__)
        raise ConfigError(
            f"environment {name!r} has no spatial layout to render; "
            f"renderable: {', '.join(RENDERABLE)}"
        )
    return base


# --- geometry: where each agent is drawn -------------------------------------------------------


def _nav_view(state: Any) -> tuple[float, float]:
    """(half-width of the view in world units, pixels per world unit)."""
    pos = np.concatenate([np.asarray(state.agent_pos), np.asarray(state.landmark_pos)])
    reach = float(np.max(np.abs(pos))) + AGENT_SIZE + 0.05 if pos.size else 0.0
    half = max(NAV_LIMIT, reach)
    return half, SIZE / (2 * half)


def _nav_px(xy: np.ndarray, half: float, scale: float) -> np.ndarray:
    """World [.., 2] -> pixel (x right, y down) below the title strip."""
    x = (xy[..., 0] + half) * scale
    y = TITLE_H + (half - xy[..., 1]) * scale
    return np.stack([x, y], axis=-1)


def _lbf_cell(env: LevelBasedForaging) -> float:
    return SIZE / max(env.rows, env.cols)


def _hall_geometry(env: Hallway) -> tuple[float, float]:
    """(cell width, row height) in pixels."""
    cell = SIZE / env.num_cells
    row = min(cell, 60.0)
    return cell, row


def _traffic_cell(env: TrafficGrid) -> float:
    return SIZE / max(env.rows, env.cols)


def agent_pixels(env: Any, state: Any) -> np.ndarray:
    """[N, 2] float pixel centres (x, y) of the agents in :func:`frame`'s image."""
    base = check_renderable(env)
    if isinstance(base, TrafficGrid):  # agent i is intersection i (row-major)
        cell = _traffic_cell(base)
        r, c = np.divmod(np.arange(base.num_agents), base.cols)
        return np.stack([(c + 0.5) * cell, TITLE_H + (r + 0.5) * cell], axis=1).astype(float)
    if isinstance(base, CooperativeNavigation):
        half, scale = _nav_view(state)
        return _nav_px(np.asarray(state.agent_pos, np.float64), half, scale)
    if isinstance(base, LevelBasedForaging):
        cell = _lbf_cell(base)
        rc = np.asarray(state.positions, np.float64)
        return np.stack([(rc[:, 1] + 0.5) * cell, TITLE_H + (rc[:, 0] + 0.5) * cell], axis=1)
    cell, row = _hall_geometry(base)
    pos = np.asarray(state.pos, np.float64)
    rows = np.arange(base.num_agents, dtype=np.float64)
    return np.stack([(pos + 0.5) * cell, TITLE_H + (rows + 0.5) * row], axis=1)


def _image_size(env: Any, state: Any) -> tuple[int, int]:
    if isinstance(env, TrafficGrid):
        cell = _traffic_cell(env)
        return round(env.cols * cell), round(env.rows * cell) + TITLE_H
    if isinstance(env, CooperativeNavigation):
        return SIZE, SIZE + TITLE_H
    if isinstance(env, LevelBasedForaging):
        cell = _lbf_cell(env)
        return round(env.cols * cell), round(env.rows * cell) + TITLE_H
    _, row = _hall_geometry(env)
    return SIZE, round(env.num_agents * row) + TITLE_H


# --- drawing -----------------------------------------------------------------------------------


def _draw_edges(draw: ImageDraw.ImageDraw, xy: np.ndarray, adjacency: np.ndarray | None) -> None:
    if adjacency is None:
        return
    n = xy.shape[0]
    for i in range(n):
        for j in range(i + 1, n):
            if adjacency[i, j]:
                p, q = xy[i], xy[j]
                draw.line([(p[0], p[1]), (q[0], q[1])], fill=EDGE_COLOR, width=EDGE_WIDTH)


def _label(draw: ImageDraw.ImageDraw, x: float, y: float, text: str, fill: Any) -> None:
    draw.text((x, y), text, fill=fill, font=_font(), anchor="mm")


def _agent_disc(draw: ImageDraw.ImageDraw, i: int, x: float, y: float, r: float, text: str) -> None:
    color = AGENT_COLORS[i % len(AGENT_COLORS)]
    draw.ellipse([x - r, y - r, x + r, y + r], fill=color, outline=(0, 0, 0))
    _label(draw, x, y, text, (255, 255, 255))


def _draw_navigation(
    draw: ImageDraw.ImageDraw, env: CooperativeNavigation, state: Any, adj: np.ndarray | None
) -> None:
    half, scale = _nav_view(state)
    # unit square where agents and landmarks start
    lo, hi = (
        _nav_px(np.array([-1.0, -1.0]), half, scale),
        _nav_px(np.array([1.0, 1.0]), half, scale),
    )
    draw.rectangle([lo[0], hi[1], hi[0], lo[1]], outline=GRID_COLOR)
    for k, (x, y) in enumerate(_nav_px(np.asarray(state.landmark_pos, np.float64), half, scale)):
        d = 6
        draw.line([(x - d, y - d), (x + d, y + d)], fill=LANDMARK_COLOR, width=2)
        draw.line([(x - d, y + d), (x + d, y - d)], fill=LANDMARK_COLOR, width=2)
        _label(draw, x + d + 4, y - d - 2, str(k), LANDMARK_COLOR)
    xy = agent_pixels(env, state)
    _draw_edges(draw, xy, adj)
    r = AGENT_SIZE * scale
    for i, (x, y) in enumerate(xy):
        _agent_disc(draw, i, x, y, r, str(i))


def _draw_lbf(
    draw: ImageDraw.ImageDraw, env: LevelBasedForaging, state: Any, adj: np.ndarray | None
) -> None:
    cell = _lbf_cell(env)
    w, h = env.cols * cell, env.rows * cell
    for c in range(env.cols + 1):
        draw.line([(c * cell, TITLE_H), (c * cell, TITLE_H + h)], fill=GRID_COLOR)
    for r in range(env.rows + 1):
        draw.line([(0, TITLE_H + r * cell), (w, TITLE_H + r * cell)], fill=GRID_COLOR)
    field = np.asarray(state.field)
    pad = 0.2 * cell
    for r, c in zip(*np.nonzero(field), strict=True):
        x0, y0 = c * cell, TITLE_H + r * cell
        draw.rectangle([x0 + pad, y0 + pad, x0 + cell - pad, y0 + cell - pad], fill=FOOD_COLOR)
        _label(draw, x0 + cell / 2, y0 + cell / 2, str(int(field[r, c])), (255, 255, 255))
    xy = agent_pixels(env, state)
    _draw_edges(draw, xy, adj)
    levels = np.asarray(state.levels)
    for i, (x, y) in enumerate(xy):
        _agent_disc(draw, i, x, y, 0.38 * cell, f"{i}:L{int(levels[i])}")


def _draw_hallway(
    draw: ImageDraw.ImageDraw, env: Hallway, state: Any, adj: np.ndarray | None
) -> None:
    cell, row = _hall_geometry(env)
    for i, length in enumerate(env.lengths):
        y0 = TITLE_H + i * row
        draw.rectangle([0, y0 + 2, cell, y0 + row - 2], fill=GOAL_COLOR)
        _label(draw, cell / 2, y0 + row - 9, "g", TEXT_COLOR)
        for c in range(length + 1):
            draw.rectangle(
                [c * cell, y0 + 2, (c + 1) * cell, y0 + row - 2], outline=GRID_COLOR, width=1
            )
    xy = agent_pixels(env, state)
    _draw_edges(draw, xy, adj)
    for i, (x, y) in enumerate(xy):
        _agent_disc(draw, i, x, y, 0.3 * min(cell, row), str(i))


QUEUE_COLOR = (210, 90, 40)  # waiting cars


def _draw_traffic(
    draw: ImageDraw.ImageDraw, env: TrafficGrid, state: Any, adj: np.ndarray | None
) -> None:
    """Roads, then per intersection: a queue bar on each incoming side (length ~ cars, count
    printed) and the light (green bars on the axis that has green: N-S or E-W)."""
    cell = _traffic_cell(env)
    xy = agent_pixels(env, state)
    top, bottom = TITLE_H, TITLE_H + env.rows * cell
    for x in np.unique(xy[:, 0]):
        draw.line([(x, top), (x, bottom)], fill=GRID_COLOR, width=3)
    for y in np.unique(xy[:, 1]):
        draw.line([(0, y), (env.cols * cell, y)], fill=GRID_COLOR, width=3)
    _draw_edges(draw, xy, adj)
    queues, phase = np.asarray(state.queues), np.asarray(state.phase)
    box, reach = 0.12 * cell, 0.36 * cell
    # incoming lane d waits on its side: north (up), south (down), east (right), west (left)
    sides = {0: (0.0, -1.0), 1: (0.0, 1.0), 2: (1.0, 0.0), 3: (-1.0, 0.0)}
    for i, (x, y) in enumerate(xy):
        for d, (dx, dy) in sides.items():
            length = box + (reach - box) * min(queues[i, d] / env.max_queue, 1.0)
            x1, y1 = x + dx * length, y + dy * length
            draw.line([(x + dx * box, y + dy * box), (x1, y1)], fill=QUEUE_COLOR, width=8)
            _label(
                draw, x + dx * (reach + 6), y + dy * (reach + 6), str(int(queues[i, d])), TEXT_COLOR
            )
        green = (0, 170, 0)
        if phase[i] == 0:  # north-south green
            draw.rectangle([x - 3, y - box, x + 3, y + box], fill=green)
        else:
            draw.rectangle([x - box, y - 3, x + box, y + 3], fill=green)
        draw.rectangle(
            [x - box, y - box, x + box, y + box],
            outline=AGENT_COLORS[i % len(AGENT_COLORS)],
            width=2,
        )
        _label(draw, x + box + 6, y - box - 6, str(i), TEXT_COLOR)


def frame(
    env: Any,
    state: Any,
    graph: Any = None,
    adjacency: Any = None,
    title: str = "",
) -> np.ndarray:
    """One RGB image [H, W, 3] uint8 of ``state``, with the graph's edges between agents.

    ``adjacency`` ([N, N] bool, e.g. this round's ``Network.round_adjacency``) takes precedence
    over ``graph`` (a :class:`~netmarl.network.graphs.Graph`); with neither, no edges are drawn.
    """
    base = check_renderable(env)
    n = base.spec.num_agents
    if adjacency is None and graph is not None:
        adjacency = graph.adjacency
    adj = None
    if adjacency is not None:
        adj = np.asarray(adjacency).astype(bool)
        if adj.shape != (n, n):
            raise ConfigError(
                f"adjacency must be [{n}, {n}] for {n} agents, got {list(adj.shape)}; "
                "give a graph with one node per agent"
            )
    img = Image.new("RGB", _image_size(base, state), BACKGROUND)
    draw = ImageDraw.Draw(img)
    if isinstance(base, CooperativeNavigation):
        _draw_navigation(draw, base, state, adj)
    elif isinstance(base, LevelBasedForaging):
        _draw_lbf(draw, base, state, adj)
    elif isinstance(base, TrafficGrid):
        _draw_traffic(draw, base, state, adj)
    else:
        _draw_hallway(draw, base, state, adj)
    draw.rectangle([0, 0, img.width, TITLE_H - 1], fill=BACKGROUND)
    if title:
        draw.text((4, TITLE_H / 2), title, fill=TEXT_COLOR, font=_font(), anchor="lm")
    return np.asarray(img, dtype=np.uint8)


# --- episodes ----------------------------------------------------------------------------------


def random_policy(env: Any) -> PolicyFn:
    """Uniform-random actions: over ``avail_actions`` (discrete) or the Box (continuous)."""
    space = env.spec.action_space
    n = env.spec.num_agents
    if isinstance(space, Box):

        def act_box(key: jax.Array, ts: TimeStep) -> jax.Array:
            del ts
            return jax.random.uniform(key, (n, *space.shape), minval=space.low, maxval=space.high)

        return jax.jit(act_box)

    def act(key: jax.Array, ts: TimeStep) -> jax.Array:
        logits = jnp.where(ts.avail_actions, 0.0, -jnp.inf)
        return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)

    return jax.jit(act)


def render_episode(
    env: Any,
    policy_fn: PolicyFn,
    key: jax.Array,
    graph: Any = None,
    network: Any = None,
    max_steps: int | None = None,
) -> list[np.ndarray]:
    """Frames of one episode: the reset state, then one per step until done or ``max_steps``.

    With a time-varying ``network`` each step's frame shows that step's links (a fresh
    ``round_adjacency`` per step); otherwise ``graph`` (default ``network.graph``) is drawn.
    """
    check_renderable(env)
    if graph is None and network is not None:
        graph = network.graph
    time_varying = network is not None and network.time_varying
    limit = env.spec.episode_limit if max_steps is None else int(max_steps)
    if limit < 0:
        raise ConfigError(f"max_steps must be >= 0, got {max_steps}")
    name = env.spec.name
    reset, step, policy = (
        jax.jit(env.reset),
        jax.jit(env.step),
        policy_fn,
    )  # policies jit themselves
    round_adj = jax.jit(network.round_adjacency) if time_varying else None

    k_reset, key = jax.random.split(key)
    state, ts = reset(k_reset)
    total = 0.0

    def draw(t: int, k: jax.Array) -> np.ndarray:
        adj = np.asarray(round_adj(k)) if round_adj is not None else None
        title = f"{name}  t={t}  return={total:.2f}"
        return frame(env, state, graph=graph, adjacency=adj, title=title)

    key, k_net = jax.random.split(key)
    frames = [draw(0, k_net)]
    for t in range(1, limit + 1):
        key, k_act, k_step, k_net = jax.random.split(key, 4)
        actions = policy(k_act, ts)
        state, ts = step(k_step, state, actions)
        total += float(ts.team_reward)
        frames.append(draw(t, k_net))
        if bool(ts.done):
            break
    return frames


def save_gif(frames: Sequence[np.ndarray], path: str | Path, fps: float = 5) -> Path:
    """Write ``frames`` as a looping animated GIF (atomically: temp file, then rename)."""
    if len(frames) == 0:
        raise ConfigError("no frames to save")
    if fps <= 0:
        raise ConfigError(f"fps must be > 0, got {fps}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    from netmarl.run.driver import default_file_mode

    os.chmod(tmp, default_file_mode())
    try:
        images[0].save(
            tmp,
            format="GIF",
            save_all=True,
            append_images=images[1:],
            duration=round(1000 / fps),
            loop=0,
        )
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


# --- run directories ---------------------------------------------------------------------------


def policy_for_render(built: Any, run_dir: str | Path, seed_index: int = 0) -> PolicyFn | None:
    """The trained evaluation policy of seed ``seed_index`` of a run, or None when its learner
    has none (tabular learners act on state indices of finite MDPs, not on observations).

    Neural learners' policies come from the newest good checkpoint; a recurrent policy's
    carry is kept between calls and restarted when an episode ends.
    """
    from netmarl.algos.base import NeuralLearner
    from netmarl.run import checkpoint
    from netmarl.run.driver import make_trainer

    learner = built.learner
    if not isinstance(learner, NeuralLearner):
        return None
    trainer = make_trainer(built)
    like = jax.jit(jax.vmap(trainer.init))(jax.random.split(jax.random.key(0), built.config.seeds))
    _, state, _ = checkpoint.load_latest(Path(run_dir) / "checkpoints", like)
    params = jax.tree.map(lambda x: x[seed_index], learner.policy_params(state.learner))
    act = jax.jit(learner.policy.act)
    carry = [learner.policy.init_carry()]

    def policy_fn(key: jax.Array, ts: TimeStep) -> jax.Array:
        if int(ts.episode_step) == 0:
            carry[0] = learner.policy.init_carry()
        actions, carry[0] = act(params, carry[0], ts, key)
        return actions

    return policy_fn


def render_run(
    run_dir: str | Path,
    out: str | Path,
    seed: int = 0,
    max_steps: int | None = None,
    fps: float = 5,
) -> tuple[Path, int, bool]:
    """Render one episode of a run directory's env and network to ``out``.

    Returns (path, number of frames, whether the trained policy was used).
    """

    from netmarl.envs import make_env
    from netmarl.run.driver import build, load_run_config

    run_dir = Path(run_dir)
    config = load_run_config(run_dir)
    check_renderable(make_env(config.env, **config.env_kwargs))  # before building the learner
    built = build(config)
    policy = policy_for_render(built, run_dir)
    trained = policy is not None
    if policy is None:
        policy = random_policy(built.env)
    frames = render_episode(
        built.env, policy, jax.random.key(seed), network=built.network, max_steps=max_steps
    )
    return save_gif(frames, out, fps), len(frames), trained
