"""ms-swift's ``GRPOTrainer`` for the summary task, without its silent record swap."""
from __future__ import annotations

from swift.rlhf_trainers import GRPOTrainer

from ..swift_seams import NoResample


class ProjectGRPOTrainer(NoResample, GRPOTrainer):
    """ms-swift's ``GRPOTrainer`` that never swaps a record for another one.

    With ``truncation_strategy: raise``, ms-swift replaces a prompt that fails to encode with a random other record.
    Here every record was encoded once before training (``custom.encode_check``), so a failure left is an error that
    should surface, not a silent change of the training data.
    """
