"""Reward functions for GRPO post-training."""
from .summary import IRRELEVANT, PARSE_PENALTY, REWARDS, SCORERS, parse_summary, register

__all__ = ['IRRELEVANT', 'PARSE_PENALTY', 'REWARDS', 'SCORERS', 'parse_summary', 'register']
