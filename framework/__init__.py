"""Serverless agent hosting: one agent.yaml, four clouds."""

__version__ = "0.1.0"
