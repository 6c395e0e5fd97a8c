"""ms-swift's SFT pipeline with the project's datasets in place of ms-swift's dataset loading.

``_prepare_dataset`` is replaced, and the trainer is ms-swift's with the per-dataset telemetry mixin; model loading,
the template, ``prepare_model`` (LoRA / full / freezing, always run before the trainer is built), checkpointing and
``logging.jsonl`` are ms-swift's own.
"""
from __future__ import annotations

import os
from pathlib import Path

from swift.pipelines.train.sft import SwiftSft
from swift.utils import get_logger, is_master

from ..config import ConfigError, ProjectConfig
from ..datasets import DenseCaptionDataset
from ..datasets.augmentation import augmenter_for
from ..datasets.builders import BuildSettings
from ..datasets.fusion import FusionDataset, FusionEvalDataset
from ..datasets.pixels import read_uint8_patches
from ..datasets.record_check import check_datasets
from ..datasets.swift_rows import SWIFT_VAL, write_swift_rows
from ..run.debug_report import describe_batch, trainable_summary
from ..run.run_dir import space_problem
from ..swift_seams import generation_sees_images, project_run
from .engines import parameter_sharding
from .stand_in_image import add_stand_in_rows
from .telemetry import TelemetrySeq2SeqTrainer

logger = get_logger()


def checkpoint_bytes(model, args) -> int:
    """About how many bytes one checkpoint of ``model`` takes: the weights saved (all of them for a full fine-tune,
    the trainable ones for an adapter) and, unless `save_only_model`, the optimizer's two moments per trainable
    parameter."""
    trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
    weights = trainable if args.tuner_type == 'lora' else sum(p.numel() * p.element_size() for p in model.parameters())
    return weights + (0 if args.save_only_model else 2 * trainable)


class ProjectSft(SwiftSft):
    """``SwiftSft`` reading ``custom.train_jsonl`` / ``custom.val_jsonl`` through ``DenseCaptionDataset``."""

    def __init__(self, args, cfg: ProjectConfig):
        self.cfg = cfg
        super().__init__(args)
        # The datasets hand images to the model as uint8 patches, expanded on the model's device (8x less to
        # build, collate and copy per image); logged so a run says which pixel path it took.
        for model in (self.model, getattr(self, 'teacher_model', None), getattr(self, 'ref_model', None)):
            if model is not None:
                generation_sees_images(model)  # under DeepSpeed, ms-swift's Qwen3-VL forward drops them
        uint8 = self.model is not None and read_uint8_patches(self.template, self.model)
        logger.info(f'pixels reach the vision tower as {"uint8 patches" if uint8 else "float32 rows"}')

    def _prepare_dataset(self):
        """The datasets of a training run; ms-swift saves ``args.json`` right after, so they are named there too."""
        train, val = self._build_datasets()
        self._name_datasets_for_swift(val)
        return [train, val]

    def _name_datasets_for_swift(self, val) -> None:
        """Put, in place of the placeholder dataset ids, what ms-swift's tools can read back from ``args.json``:
        ``val_dataset`` is the run's validation set in ms-swift's format (``swift infer --load_data_args true``), and
        ``dataset`` is empty (the training records are the project's, read by the project's datasets only)."""
        self.args.dataset = []
        self.args.val_dataset = []
        if val is not None:
            path = Path(self.args.output_dir) / SWIFT_VAL
            if is_master():
                write_swift_rows(val, path)
            self.args.val_dataset = [str(path)]

    def _build_datasets(self, encode_check: bool | str | None = None):
        custom = self.cfg.custom
        settings = BuildSettings.from_config(self.cfg)
        fusion = self.cfg.fusion
        if fusion is not None:
            train = FusionDataset(fusion, self.template, settings, self.cfg.augmentation, custom.sample_limit)
            val = None
            if fusion.eval_sources:
                val = FusionEvalDataset(fusion, self.template, settings, custom.sample_limit)
            logger.info(f'fusion ({fusion.origin}), samples per epoch: {train.counts()}; evaluated sources: '
                        f'{fusion.eval_sources or "none"}')
        else:
            train = DenseCaptionDataset(custom.train_jsonl, self.template, custom.sample_limit, settings,
                                        augmenter_for(self.cfg.augmentation), seed=self.args.seed)
            val = None
            if custom.val_jsonl:  # evaluation sees the records as they are: no augmentation
                val = DenseCaptionDataset(custom.val_jsonl, self.template, custom.sample_limit, settings)
        check = custom.encode_check if encode_check is None else encode_check
        reports = check_datasets([train, val], deep=check == 'deep') if check else None
        for report in reports or []:
            logger.info(f'record check: {report.dataset.path}: {len(report.dataset)} records, longest '
                        f'{report.longest} of max_length {self.template.max_length} tokens'
                        + (' (verdict cached)' if report.cached else ''))
        self._stand_in_rows(reports)
        logger.info(f'train samples: {len(train)}; val samples: {len(val) if val else 0}')
        return [train, val]

    def _stand_in_rows(self, reports: list | None) -> None:
        """With the weights sharded over 2+ processes, give micro-batches without an image a stand-in row
        (``stand_in_image``) when the records mix text-only and image records, or when unchecked (not known). A run
        whose records are all of one kind needs none: every process takes the same path, and a row without labels
        would keep ms-swift from trimming the logits to the supervised positions."""
        if not parameter_sharding(self.cfg) or self.cfg.world_size < 2 or self.cfg.rlhf.get('rlhf_type'):
            return
        if reports is not None:
            text_only = sum(len(report.text_only) for report in reports)
            if text_only in (0, sum(len(report.dataset) for report in reports)):
                return
        add_stand_in_rows(self.template)
        logger.info('the weights are sharded and the records mix text-only and image records: a micro-batch '
                    'without an image gets a stand-in row with one (no labels), so every process runs the vision '
                    'tower at every step')

    def run(self):
        with project_run('causal_lm', TelemetrySeq2SeqTrainer):
            return super().run()

    def train(self, trainer):
        self.trainer = trainer  # kept for callers that inspect the run (optimizer groups, state)
        if is_master() and self.args.save_strategy != 'no':
            if (problem := space_problem(self.args.output_dir, checkpoint_bytes(trainer.model, self.args))):
                raise ConfigError([problem])
        # ms-swift creates `last` / `best` links at the end of training and fails if an earlier run into the same
        # output_dir left them; they are recreated, so drop the stale ones first.
        if self.args.create_checkpoint_symlink:
            for name in ('last', 'best'):
                link = Path(self.args.output_dir) / name
                if link.is_symlink():
                    link.unlink()
        return super().train(trainer)

    def _handle_trainer_state(self, trainer, is_write_rank: bool):
        """ms-swift links `best` beside `last` (`training.create_checkpoint_symlink`), and a run that never evaluated
        has no best checkpoint: its `os.symlink(None, ...)` fails after the whole run trained. Such a run gets `last`
        only; every other run goes through ms-swift's own code. Either way the links are made relative, so they
        still point into the folder once it is moved or copied (ms-swift's absolute ones pointed at the original)."""
        state = trainer.state
        if (not self.args.create_checkpoint_symlink or not hasattr(state, 'last_model_checkpoint')
                or state.best_model_checkpoint is not None):
            super()._handle_trainer_state(trainer, is_write_rank)
        else:
            last = os.path.join(self.args.output_dir, 'last')
            if is_write_rank:
                os.symlink(state.last_model_checkpoint, last)
                logger.info(f'last_model_checkpoint: {last} (no evaluation ran, so there is no `best` link)')
            state.last_model_checkpoint = last
        for name in ('last', 'best') if is_write_rank and self.args.create_checkpoint_symlink else ():
            link = Path(self.args.output_dir) / name
            if link.is_symlink() and os.path.isabs(target := os.readlink(link)):
                link.unlink()
                link.symlink_to(os.path.relpath(target, link.parent))

    def _debug_samples(self, train, size: int) -> tuple[list[dict], list[str]]:
        """The encoded samples of the first batch the trainer sees, and lines that say how it uses them."""
        return [train[i] for i in range(size)], []

    def debug(self) -> str:
        """Build everything up to the trainer, then describe one collated batch and the trainable parameters."""
        train, _ = self._build_datasets(encode_check=False)  # only the batch shown is encoded
        model = self.prepare_model(self.args, self.model, template=self.template, train_dataset=train)
        size = min(self.args.per_device_train_batch_size, len(train))
        samples, notes = self._debug_samples(train, size)
        batch = self.template.data_collator(samples)
        processor = self.template.processor
        report = '\n'.join([
            *notes,
            describe_batch(batch, self.template.tokenizer, self.model.config.image_token_id,
                           processor.image_processor.merge_size),
            'trainable parameters:',
            trainable_summary(model, self.args.model_meta.model_arch),
        ])
        print(report, flush=True)
        return report

