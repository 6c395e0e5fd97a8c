"""Train a Qwen3-VL model from one YAML config.

    python -m src.sft --config configs/smoke/lora.yaml [--base_config parent.yaml] [--debug]

Five steps: parse the three flags, load and validate the config (before anything heavy is imported), write the
resolved config next to the checkpoints, build ms-swift's pipeline, train (or, with --debug, describe one batch and
the trainable parameters, then exit).
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import traceback
from pathlib import Path
from typing import Any, NoReturn

import yaml

from .config import ConfigError, ProjectConfig, check_inputs_exist, load_and_validate
from .config.remote_code import remote_code_notices
from .config.stage_outputs import resolve_stage_outputs, resume_in_version_folder
from .datasets.contract import RecordError
from .run.allocator import tune_allocator
from .run.launcher_report import report_failure
from .run.run_dir import SaveError
from .run.run_log import RunLog


class _Parser(argparse.ArgumentParser):

    def error(self, message: str):
        self.exit(2, f'{self.prog}: error: {message}\nEvery training setting lives in the YAML config; the command '
                  'line takes only --config, --base_config and --debug.\n')


def parse_cli(argv: list[str] | None = None) -> argparse.Namespace:
    parser = _Parser(prog='python -m src.sft', description=__doc__.split('\n')[0])
    parser.add_argument('--config', required=True, help='the YAML config to train with')
    parser.add_argument('--base_config', help='an extra parent config, merged before the ones `extends` names')
    parser.add_argument('--debug', action='store_true', help='print one batch and the trainable parameters, exit')
    return parser.parse_args(argv)


def write_resolved_config(cfg: ProjectConfig, output_dir: str) -> Path:
    """Save the merged, validated config beside the checkpoints, so a run can be reproduced from its output.

    `training.overwrite_output_dir: true` is left out: rerunning the file would otherwise delete the very run it
    describes (its checkpoints, logs and this file). Without it a rerun into the same folder is refused before the
    model loads, with the choices (resume, overwrite, add_version, another output_dir)."""
    path = Path(output_dir) / 'resolved_config.yaml'
    path.parent.mkdir(parents=True, exist_ok=True)
    data = cfg.to_dict()
    header = f'# Resolved from {cfg.source}; rerun with: python -m src.sft --config {path}\n'
    if data['training'].pop('overwrite_output_dir', None):
        header += ('# training.overwrite_output_dir: true left out, so that rerunning this file cannot delete the run '
                   'it describes; set it again (or another training.output_dir) to train here anew\n')
    path.write_text(header + yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def main(config_path: str | os.PathLike, base_config: str | os.PathLike | None = None, debug: bool = False) -> Any:
    """Run training (or the --debug report) for ``config_path``; returns ms-swift's result (or the report text)."""
    run_log = RunLog()  # before ms-swift is first imported: its import logs
    try:
        result = _run(config_path, base_config, debug, run_log)
        _leave_process_group()
        return result
    finally:
        run_log.close()


def _leave_process_group() -> None:
    """All processes of a finished run leave their process group together: none exits while another still holds
    its gloo connections. (What the C++ runtime still did at exit afterwards: `swift_seams.leave_without_teardown`.)"""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def _run(config_path, base_config, debug: bool, run_log: RunLog) -> Any:
    cfg = load_and_validate(config_path, base_config)
    for warning in cfg.warnings:
        print(f'warning: {warning}', file=sys.stderr, flush=True)
    for notice in resolve_stage_outputs(cfg) + resume_in_version_folder(cfg):
        print(notice, file=sys.stderr, flush=True)
    check_inputs_exist(cfg)
    if cfg.custom.encode_check and not debug:  # every problem that needs no model, before the model loads
        from .datasets.precheck import check_run_records, ignored_settings_problems
        from .trainers.engines import mixed_modalities_problem

        splits = check_run_records(cfg)
        problems = [p for counts in splits if (p := mixed_modalities_problem(cfg, counts))]
        if problems := problems + ignored_settings_problems(cfg, splits):
            raise ConfigError(problems)

    # Heavy imports only once the config is known to be good.
    import torch
    from swift.utils import is_master

    from .swift_seams import remote_code_only_for
    from .testing.tiny_model import ensure_tiny_model
    from .trainers.engines import weights_sharded_on_cpus

    run_log.start()
    # before any data is built; DataLoader workers inherit it
    allocator = tune_allocator(weights_sharded_on_cpus(cfg, torch.cuda.is_available()))
    if is_master():
        print(allocator, file=sys.stderr, flush=True)
    ensure_tiny_model(cfg.model['model'], cfg.custom.build_tiny_model, cfg.model.get('model_type'))
    for notice in remote_code_notices(cfg):
        print(notice, file=sys.stderr, flush=True)
    with remote_code_only_for(cfg.trusted_model_folders()):
        return _train(cfg, debug, run_log, is_master())


def _train(cfg: ProjectConfig, debug: bool, run_log: RunLog, master: bool) -> Any:
    import torch

    from .config.validate import world_size
    from .run.checkpoints import resume_problems
    from .run.run_dir import claim_output_dir, failed_save, make_output_dir
    from .run.start_weights import start_model
    from .swift_seams import (
        rotation_counts_checkpoints_only,
        safetensors_keep_file_modes,
        set_tensorboard_dir,
        set_video_sampling,
    )
    from .trainers.adapter_targets import adapter_targets
    from .trainers.engines import start_engine
    from .trainers.sft_pipeline import ProjectSft
    from .trainers.swift_args import to_sft_arguments

    rotation_counts_checkpoints_only()  # save_total_limit never deletes a `checkpoint-N-merged/`
    safetensors_keep_file_modes()  # the weights a run writes are readable as its other files are
    resolved = cfg
    if start := cfg.settings.start_from_checkpoint:  # a new stage from an earlier stage's weights
        model = start_model(start, cfg.model['model'], int(os.environ.get('RANK', '0')))
        cfg = dataclasses.replace(cfg, model={**cfg.model, 'model': model})
    set_video_sampling(cfg.video.environment())
    for notice in adapter_targets(cfg)[1] if master else ():
        print(notice, file=sys.stderr, flush=True)
    if cfg.training.get('output_dir'):  # a file in the way is one line, before ms-swift's own makedirs
        make_output_dir(Path(cfg.training['output_dir']))
    args = to_sft_arguments(cfg)
    if problems := resume_problems(args, world_size()):
        raise ConfigError(problems)
    set_tensorboard_dir(args.logging_dir)
    start_engine(args.deepspeed, torch.cuda.is_available())
    if cfg.rlhf.get('rlhf_type'):
        from .trainers.rlhf_pipeline import ProjectRlhf as pipeline_cls
    else:
        pipeline_cls = ProjectSft
    if debug:
        return pipeline_cls(args, cfg).debug()
    lock, failure = None, None
    if master:  # one process guards the folder and tells the others whether the run goes on
        try:
            lock = claim_output_dir(args.output_dir, args.resume_from_checkpoint, cfg.settings.overwrite_output_dir)
            log_file = run_log.to_file(args.output_dir)
            print(f'training into {args.output_dir} (arguments, model and data details: {log_file})',
                  file=sys.stderr, flush=True)
            write_resolved_config(resolved, args.output_dir)
        except BaseException as exc:
            failure = exc
    _stop_together(failure)
    if failure is not None:
        raise failure
    try:
        return pipeline_cls(args, cfg).main()
    except Exception as exc:
        if master and (account := failed_save(args.output_dir, exc)) is not None:
            raise SaveError(account) from exc
        raise
    finally:
        if lock is not None:
            lock.release()


def _stop_together(failure: BaseException | None) -> None:
    """Every process learns whether process 0 could claim the output folder, and stops with its message if not.

    Without this the other processes went on loading the model after process 0 refused the folder, and died in
    their first collective with a traceback (gloo: "Connection closed by peer") under the one-line refusal."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return
    problems = None if failure is None else (
        failure.problems if isinstance(failure, ConfigError) else [f'process 0 stopped before training: {failure}'])
    shared = [problems]
    dist.broadcast_object_list(shared, src=0)
    if failure is None and shared[0] is not None:
        raise ConfigError(shared[0])


def cli(argv: list[str] | None = None) -> int:
    flags = parse_cli(argv)
    try:
        main(flags.config, flags.base_config, flags.debug)
    except (ConfigError, RecordError, SaveError) as exc:  # the message says where and why; no traceback needed
        report_failure(f'error: {exc}')
        return 2
    return 0


def run_as_script() -> NoReturn:
    """``python -m src.sft``: exit with ``cli``'s code, or with 1 and the traceback of an unexpected error (as Python
    would); either way a process of a multi-process run leaves without the C++ teardown that aborted finished runs
    (``swift_seams.leave_without_teardown``), so its exit code is its own."""
    from .swift_seams import leave_without_teardown

    try:
        code = cli()
    except Exception:  # noqa: BLE001 - reported as Python reports it, then the same exit path
        report_failure(traceback.format_exc())
        code = 1
    leave_without_teardown(code)


if __name__ == '__main__':
    run_as_script()
