"""Trainer callbacks the project adds to ms-swift's trainer, registered by name (``swift_seams.register_callbacks``)."""
from __future__ import annotations

from swift.callbacks.base import TrainerCallback

from ..run.allocator import return_freed_memory
from ..swift_seams import prefixed, register_callbacks

PREFIXED_LOG_KEYS = 'prefixed_log_keys'
DATASET_EPOCH = 'dataset_epoch'
RETURN_FREED_MEMORY = 'return_freed_memory'


class PrefixedLogKeysCallback(TrainerCallback):
    """Give `logging.jsonl` the metric names TensorBoard shows: ``train/loss``, ``eval/loss``, ``eval/token_acc``.

    ms-swift writes ``logging.jsonl`` from its progress callback with the trainer's raw keys (``loss``,
    ``eval_loss``). Callbacks named in ``args.callbacks`` run after the TensorBoard callback (which prefixes its own
    copy) and before the progress callback, so renaming the keys in place here prefixes each exactly once.
    For an evaluation the trainer passes the same dict on to ``on_evaluate`` and then to best-checkpoint selection,
    which looks up ``eval_<metric>``; ``on_evaluate`` therefore puts the raw keys back.
    """

    def __init__(self, args, trainer):
        super().__init__(args, trainer)
        self._raw_eval_logs: dict | None = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not logs:
            return
        if any(k.startswith('eval_') for k in logs):
            self._raw_eval_logs = dict(logs)
        renamed = prefixed(logs)
        logs.clear()
        logs.update(renamed)

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        if metrics is not None and self._raw_eval_logs is not None:
            metrics.clear()
            metrics.update(self._raw_eval_logs)
        self._raw_eval_logs = None


class DatasetEpochCallback(TrainerCallback):
    """Tell the training dataset which epoch starts, so each epoch draws fresh augmentation from the run seed."""

    def on_epoch_begin(self, args, state, control, train_dataloader=None, **kwargs):
        dataset = getattr(train_dataloader, 'dataset', None)
        if hasattr(dataset, 'epoch'):
            dataset.epoch = int(state.epoch or 0)


class ReturnFreedMemoryCallback(TrainerCallback):
    """Hand freed memory back to the system once the engine has prepared the model, and after each checkpoint.

    The project's allocator setting (``src/run/allocator.py``) keeps freed blocks for reuse, and preparing the model
    frees whole copies of the weights (FSDP2 shards them, DeepSpeed converts them); kept, they stayed resident for
    the whole run. The training begins after the preparation and before the DataLoader workers start."""

    def on_train_begin(self, args, state, control, **kwargs):
        return_freed_memory()

    def on_save(self, args, state, control, **kwargs):
        return_freed_memory()


register_callbacks({PREFIXED_LOG_KEYS: PrefixedLogKeysCallback, DATASET_EPOCH: DatasetEpochCallback,
                   RETURN_FREED_MEMORY: ReturnFreedMemoryCallback})
