"""netmarl: decentralized cooperative multi-agent reinforcement learning over communication networks."""

__version__ = "0.1.0"
