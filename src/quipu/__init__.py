"""Quipu: agentless discovery and inventory."""

__version__ = "0.1.0"
