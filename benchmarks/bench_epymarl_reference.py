"""Host calibration for the EPyMARL comparison: EPyMARL's Q-learning update, re-timed here.

Issue 6 gives EPyMARL's figures from one machine of this kind (one thread per run: IQL GRU 128
43 ms per update, VDN GRU 64 22 ms, QMIX GRU 64 27 ms, VDN feed-forward 8 ms; raw
``lbforaging`` 19k steps/s). Machines of the same kind differ: XLA's 1024^3 matmul ran at
109 GFLOP/s on one core in session 6 and at 215 on the machine of 2026-12-07. A speed-up
measured against figures from another machine is not a speed-up.

EPyMARL itself cannot be installed here (it is not on PyPI). This script is our own PyTorch
implementation of the work one EPyMARL update does, written from the structure of its
``QLearner.train`` (``src/learners/q_learner.py``) with its ``BasicMAC`` / ``RNNAgent`` /
``QMixer``: the agent network stepped one time step at a time in Python over the batch's
51 steps, online and target; the chosen Q gathered; double-Q targets; VDN's sum or QMIX's
hyper-network mixer (2 hyper-layers, embed 32, hyper-net 64); rewards standardised by
running statistics; masked TD loss; backward; global gradient clip at 10; Adam 5e-4. Same
batch as issue 6: 32 episodes of ``Foraging-8x8-2p-2f-v3`` (2 agents, 12 observation floats
+ the agent id, 6 actions, 12 state floats), 50 steps + the last observation, one torch
thread.

Read its output as a ratio: the ms per update it reports here, over the same configuration's
figure from issue 6, says how this machine compares with the issue's for EPyMARL's kind of
work. It is not EPyMARL (no sacred, no EpisodeBatch indexing, random data), so only the
ratio is used, never its absolute figures as EPyMARL's.

Needs PyTorch (``pip install torch``; not a netmarl dependency). Run: ``python
benchmarks/bench_epymarl_reference.py`` (about a minute; pin it with ``taskset -c 0``).
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np
import torch
from torch import nn

# name -> (hidden, recurrent, mixer, issue 6's EPyMARL ms per update)
CONFIGS = {
    "IQL (GRU 128)": (128, True, None, 43.0),
    "VDN (GRU 64)": (64, True, "vdn", 22.0),
    "QMIX (GRU 64)": (64, True, "qmix", 27.0),
    "VDN (feed-forward 64)": (64, False, "vdn", 8.0),
}
EPISODES, STEPS, AGENTS, OBS, ACTIONS, STATE = 32, 50, 2, 12, 6, 12


class Agent(nn.Module):
    """Linear-ReLU, GRU cell (or Linear-ReLU), Linear: EPyMARL's ``RNNAgent``."""

    def __init__(self, inputs: int, hidden: int, recurrent: bool) -> None:
        super().__init__()
        self.hidden, self.recurrent = hidden, recurrent
        self.fc1 = nn.Linear(inputs, hidden)
        self.rnn = nn.GRUCell(hidden, hidden) if recurrent else nn.Linear(hidden, hidden)
        self.fc2 = nn.Linear(hidden, ACTIONS)

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.relu(self.fc1(x))
        h = self.rnn(x, h.reshape(-1, self.hidden)) if self.recurrent else torch.relu(self.rnn(x))
        return self.fc2(h), h


class Mixer(nn.Module):
    """QMIX's monotonic mixer with two-layer hyper-networks (EPyMARL's ``QMixer``)."""

    def __init__(self, embed: int = 32, hyper: int = 64) -> None:
        super().__init__()
        self.embed = embed

        def hyper_net(out: int) -> nn.Sequential:
            return nn.Sequential(nn.Linear(STATE, hyper), nn.ReLU(), nn.Linear(hyper, out))

        self.w1, self.w_final = hyper_net(embed * AGENTS), hyper_net(embed)
        self.b1 = nn.Linear(STATE, embed)
        self.v = nn.Sequential(nn.Linear(STATE, embed), nn.ReLU(), nn.Linear(embed, 1))

    def forward(self, qs: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        bs = qs.size(0)
        states = states.reshape(-1, STATE)
        qs = qs.reshape(-1, 1, AGENTS)
        w1 = torch.abs(self.w1(states)).view(-1, AGENTS, self.embed)
        hidden = nn.functional.elu(torch.bmm(qs, w1) + self.b1(states).view(-1, 1, self.embed))
        w_final = torch.abs(self.w_final(states)).view(-1, self.embed, 1)
        y = torch.bmm(hidden, w_final) + self.v(states).view(-1, 1, 1)
        return y.view(bs, -1, 1)


class Learner:
    """One ``QLearner.train`` step's work, on batches given as plain tensors."""

    def __init__(self, hidden: int, recurrent: bool, mixer: str | None) -> None:
        self.agent = Agent(OBS + AGENTS, hidden, recurrent)
        self.target_agent = Agent(OBS + AGENTS, hidden, recurrent)
        self.target_agent.load_state_dict(self.agent.state_dict())
        self.mixer = Mixer() if mixer == "qmix" else None
        self.target_mixer = Mixer() if mixer == "qmix" else None
        self.vdn = mixer == "vdn"
        self.params = list(self.agent.parameters())
        if self.mixer is not None:
            self.target_mixer.load_state_dict(self.mixer.state_dict())
            self.params += list(self.mixer.parameters())
        self.optimiser = torch.optim.Adam(self.params, lr=5e-4)
        self.reward_mean, self.reward_var, self.reward_count = torch.zeros(1), torch.ones(1), 1e-4

    def unroll(self, agent: Agent, batch: dict) -> torch.Tensor:
        """Q-values [B, T + 1, N, A], one Python call of the agent per time step."""
        h = torch.zeros(EPISODES, AGENTS, agent.hidden)
        eye = torch.eye(AGENTS).unsqueeze(0).expand(EPISODES, -1, -1)
        out = []
        for t in range(STEPS + 1):
            x = torch.cat([batch["obs"][:, t], eye], dim=-1).reshape(EPISODES * AGENTS, -1)
            q, h = agent(x, h)
            out.append(q.view(EPISODES, AGENTS, -1))
        return torch.stack(out, dim=1)

    def standardise(self, rewards: torch.Tensor) -> torch.Tensor:
        """EPyMARL's ``RunningMeanStd`` update, then (r - mean) / std."""
        mean, var, count = rewards.mean(), rewards.var(), rewards.numel()
        delta, total = mean - self.reward_mean, self.reward_count + count
        self.reward_mean = self.reward_mean + delta * count / total
        m2 = self.reward_var * self.reward_count + var * count
        m2 = m2 + delta**2 * self.reward_count * count / total
        self.reward_var, self.reward_count = m2 / total, total
        return (rewards - self.reward_mean) / torch.sqrt(self.reward_var)

    def train(self, batch: dict) -> float:
        rewards = self.standardise(batch["reward"])
        actions, terminated, mask = batch["actions"], batch["terminated"], batch["filled"]
        avail = batch["avail"]
        q = self.unroll(self.agent, batch)
        chosen = torch.gather(q[:, :-1], dim=3, index=actions).squeeze(3)
        target_q = self.unroll(self.target_agent, batch)[:, 1:]
        target_q[avail[:, 1:] == 0] = -9999999
        q_detached = q.clone().detach()
        q_detached[avail == 0] = -9999999
        best = q_detached[:, 1:].max(dim=3, keepdim=True)[1]
        next_q = torch.gather(target_q, 3, best).squeeze(3)
        if self.mixer is not None:
            chosen = self.mixer(chosen, batch["state"][:, :-1])
            next_q = self.target_mixer(next_q, batch["state"][:, 1:])
        elif self.vdn:
            chosen, next_q = chosen.sum(2, keepdim=True), next_q.sum(2, keepdim=True)
        else:  # IQL: every agent its own TD on the team reward
            rewards = rewards.expand(-1, -1, AGENTS)
        targets = rewards + 0.99 * (1 - terminated) * next_q.detach()
        masked = (chosen - targets.detach()) * mask.expand_as(chosen)
        loss = (masked**2).sum() / mask.expand_as(chosen).sum()
        self.optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(self.params, 10.0)
        self.optimiser.step()
        return float(loss.detach())


def random_batch(rng: np.random.Generator) -> dict:
    """32 full-length episodes of random data with the task's shapes."""

    def tensor(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a))

    return {
        "obs": tensor(rng.random((EPISODES, STEPS + 1, AGENTS, OBS), dtype=np.float32)),
        "state": tensor(rng.random((EPISODES, STEPS + 1, STATE), dtype=np.float32)),
        "avail": tensor(rng.random((EPISODES, STEPS + 1, AGENTS, ACTIONS)) < 0.8),
        "actions": tensor(rng.integers(0, ACTIONS, (EPISODES, STEPS, AGENTS, 1))),
        "reward": tensor((rng.random((EPISODES, STEPS, 1)) < 0.05).astype(np.float32)),
        "terminated": torch.zeros(EPISODES, STEPS, 1),
        "filled": torch.ones(EPISODES, STEPS, 1),
    }


def lbforaging_steps_per_s(seconds: float) -> float:
    """Raw ``lbforaging`` steps per second with random actions (issue 6: 19k)."""
    import gymnasium as gym
    import lbforaging  # noqa: F401  (registers the tasks)

    env = gym.make("Foraging-8x8-2p-2f-v3", disable_env_checker=True).unwrapped
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    steps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        _, _, done, truncated, _ = env.step(tuple(rng.integers(0, ACTIONS, AGENTS)))
        steps += 1
        if done or truncated:
            env.reset()
    return steps / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=30, help="timed updates per round")
    parser.add_argument("--rounds", type=int, default=3, help="best of this many rounds")
    parser.add_argument("--configs", nargs="+", default=list(CONFIGS), choices=list(CONFIGS))
    args = parser.parse_args()
    torch.set_num_threads(1)  # EPyMARL pins itself to one thread per run
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    batches = [random_batch(rng) for _ in range(4)]
    print(f"# torch {torch.__version__}, 1 thread, CPUs {sorted(os.sched_getaffinity(0))}")
    print(f"# load average at start: {os.getloadavg()[0]:.2f}")
    print("| configuration | ms per update here | issue 6's EPyMARL ms | here / issue |")
    print("|---|---|---|---|")
    for name in args.configs:
        hidden, recurrent, mixer, issue_ms = CONFIGS[name]
        learner = Learner(hidden, recurrent, mixer)
        for batch in batches:  # warm-up
            learner.train(batch)
        best = np.inf
        for _ in range(args.rounds):
            t0 = time.process_time()
            for i in range(args.updates):
                learner.train(batches[i % len(batches)])
            best = min(best, (time.process_time() - t0) / args.updates)
        ms = 1000 * best
        print(f"| {name} | {ms:.1f} | {issue_ms:.0f} | {ms / issue_ms:.2f} |", flush=True)
    try:
        print(f"# raw lbforaging: {lbforaging_steps_per_s(5.0):,.0f} steps/s (issue 6: 19k)")
    except ImportError:
        print("# raw lbforaging: not installed")
    print(f"# load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
