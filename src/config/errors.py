"""The one exception type for a bad config, carrying every problem found."""
from __future__ import annotations


class ConfigError(ValueError):
    """Raised once with all problems, each naming the file and the key path, so a user fixes them in one pass."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        count = len(self.problems)
        header = f'{count} problem{"s" if count > 1 else ""} in the config:'
        super().__init__('\n'.join([header] + [f'  - {p}' for p in self.problems]))
