"""netmarl: decentralized cooperative multi-agent RL over communication networks."""

__version__ = "0.1.0"
