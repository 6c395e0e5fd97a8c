"""One bound type for every number a config holds: ms-swift's knobs, the project's, augmentation, video, fusion.

A comparison with NaN is always false, so a check written as `if value < 0: error` lets NaN through, and `.inf`
passes every lower bound. A run configured that way trains to the end on NaN gradients and exits 0. ``Bound`` is the
only place where a config number is compared: it refuses NaN always, infinity unless the knob says that infinity
means "no limit" (``unbounded``), and a fraction where the knob counts something (``integer``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


def is_number(value: Any) -> bool:
    """An int or a float as YAML / JSON reads it (a boolean is not a number)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass(frozen=True)
class Bound:
    """The numbers a knob takes: between ``low`` and ``high`` (each inclusive or not), or one of ``also``; finite
    unless ``unbounded`` (then ``.inf`` means "no limit"); whole numbers when ``integer``."""

    low: float | None = None
    high: float | None = None
    low_inclusive: bool = True
    high_inclusive: bool = True
    also: tuple[float, ...] = ()
    integer: bool = False
    unbounded: bool = False

    def admits(self, value: Any) -> bool:
        return self.problem(value) is None

    def problem(self, value: Any) -> str | None:
        """Why ``value`` is not one of this bound's numbers (``must be ..., got ...``), or None."""
        if not is_number(value) or (self.integer and isinstance(value, float) and not value.is_integer()):
            return f'must be {self.described()}, got {value!r}{yaml_float_hint(value)}'
        if value in self.also:
            return None
        if math.isnan(value):
            return f'must be {self.described()}, got NaN'
        if math.isinf(value) and not (self.unbounded and value > 0):
            return f'must be {self.described()}, got {value}'
        if self.low is not None and (value < self.low or value == self.low and not self.low_inclusive):
            return f'must be {self}, got {value!r}'
        if self.high is not None and (value > self.high or value == self.high and not self.high_inclusive):
            return f'must be {self}, got {value!r}'
        return None

    def described(self) -> str:
        """The bound with the kind of number: `a finite number > 0`, `a whole number >= 1`."""
        kind = 'a whole number' if self.integer else 'a number' if self.unbounded else 'a finite number'
        return f'{kind} {self}'.rstrip()

    def __str__(self) -> str:
        if self.low is None and self.high is None:
            text = ''
        elif self.high is None:
            text = f'{">=" if self.low_inclusive else ">"} {self.low:g}'
        elif self.low is None:
            text = f'{"<=" if self.high_inclusive else "<"} {self.high:g}'
        else:
            opening, closing = '[' if self.low_inclusive else '(', ']' if self.high_inclusive else ')'
            text = f'in {opening}{self.low:g}, {self.high:g}{closing}'
        text += ''.join(f' or {a:g}' for a in self.also)
        return text + (' (.inf: no limit)' if self.unbounded else '')


FINITE = Bound()
"""Every number of a config that declares no other bound."""
POSITIVE = Bound(0, low_inclusive=False)
NON_NEGATIVE = Bound(0)
AT_LEAST_ONE = Bound(1, integer=True)
COUNT = Bound(0, integer=True)
PROBABILITY = Bound(0, 1)
BELOW_ONE = Bound(0, 1, high_inclusive=False)
SEED = Bound(0, 2**32 - 1, integer=True)
"""numpy's and torch's seeds take 0 .. 2**32 - 1."""


def pair_problem(low_key: str, low: Any, high_key: str, high: Any) -> str | None:
    """Two knobs that are the ends of one range (`min_frames` / `max_frames`): the low end may not be above the high
    end. Unset or non-numeric ends are left to their own checks."""
    if is_number(low) and is_number(high) and low > high:
        return f'`{low_key}` ({low:g}) is above `{high_key}` ({high:g}); the range would be empty'
    return None


def non_finite_paths(value: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], float]]:
    """Every NaN or infinite number inside ``value`` (mappings and lists walked), with its key path; a list entry's
    path part is ``[i]``."""
    if isinstance(value, dict):
        return [found for k, v in value.items() for found in non_finite_paths(v, prefix + (str(k), ))]
    if isinstance(value, (list, tuple)):
        return [found for i, v in enumerate(value) for found in non_finite_paths(v, prefix + (f'[{i}]', ))]
    if isinstance(value, float) and not math.isfinite(value):
        return [(prefix, value)]
    return []


def yaml_float_hint(value: Any) -> str:
    """YAML 1.1 (PyYAML) reads `1e-4` and `5e-1` (no dot) as text: how to write the number, for a message about a
    value that should have been one; '' for anything else."""
    if not isinstance(value, str):
        return ''
    try:
        float(value)
    except ValueError:
        return ''
    mantissa, _, exponent = value.lower().partition('e')
    return f' (YAML reads {value} as text: write {mantissa}.0e{exponent})' if exponent and '.' not in mantissa else ''
