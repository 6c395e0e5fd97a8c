"""Reward functions for GRPO post-training."""
from .summary import IRRELEVANT, REWARDS, SCORERS, parse_summary, register

__all__ = ['IRRELEVANT', 'REWARDS', 'SCORERS', 'parse_summary', 'register']
