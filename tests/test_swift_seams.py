"""The ms-swift internals the project patches exist at the pinned version; an upgrade that moves one fails here."""
import ast
import dataclasses
import importlib
import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from src.swift_seams import (
    CLASS_ATTRIBUTES,
    IN_PLACE,
    OVERRIDDEN,
    PATCHED,
    PRIVATE_READS,
    prefixed,
    prefixed_logging_jsonl,
    template_limits,
)


@pytest.mark.parametrize('module,names', sorted(PATCHED.items()))
def test_every_patched_name_exists(module: str, names: tuple[str, ...]):
    loaded = importlib.import_module(module)
    for name in names:
        assert hasattr(loaded, name), f'ms-swift moved {module}.{name}; update src/swift_seams.py'


@pytest.mark.parametrize('where,names', sorted(CLASS_ATTRIBUTES.items()))
def test_every_class_attribute_the_project_sets_exists(where: tuple[str, str], names: tuple[str, ...]):
    cls = getattr(importlib.import_module(where[0]), where[1])
    fields = {f.name for f in dataclasses.fields(cls)} if dataclasses.is_dataclass(cls) else set()
    for name in names:
        assert hasattr(cls, name) or name in fields, f'{where[1]}.{name} is gone; see src/swift_seams.py'


@pytest.mark.parametrize('where,params', sorted(OVERRIDDEN.items()))
def test_every_overridden_method_keeps_its_signature(where: tuple[str, str, str], params: tuple[str, ...]):
    module, cls, method = where
    function = getattr(getattr(importlib.import_module(module), cls), method, None)
    assert function is not None, f'ms-swift removed {cls}.{method}; see src/swift_seams.py for what overrides it'
    assert tuple(inspect.signature(function).parameters) == params, (
        f'ms-swift changed {cls}.{method}{inspect.signature(function)}; see src/swift_seams.py')


def test_the_project_overrides_what_it_lists():
    from src.trainers.gkd import ProjectGKDTrainer
    from src.trainers.grpo import ProjectGRPOTrainer
    from src.trainers.rlhf_pipeline import ProjectRlhf
    from src.trainers.sft_pipeline import ProjectSft
    from src.trainers.telemetry import TelemetrySeq2SeqTrainer

    for cls, method in ((ProjectSft, '_prepare_dataset'), (ProjectRlhf, '_get_trainer_kwargs'),
                        (TelemetrySeq2SeqTrainer, '_get_data_collator'), (ProjectGKDTrainer, 'compute_loss'),
                        (ProjectGKDTrainer, '_prepare_batch_inputs'),
                        (ProjectGKDTrainer, 'resample_encode_failed_inputs'),
                        (ProjectGRPOTrainer, 'resample_encode_failed_inputs'), (ProjectGRPOTrainer, '_engine_infer')):
        assert any(method in vars(base) for base in cls.__mro__ if base.__module__.startswith('src.')), (cls, method)


def test_template_limits_restore_the_template():
    class Template:
        truncation_strategy, max_length = 'raise', 512

    template = Template()
    with pytest.raises(RuntimeError), template_limits(template, truncation_strategy='left', max_length=None):
        assert (template.truncation_strategy, template.max_length) == ('left', None)
        raise RuntimeError
    assert (template.truncation_strategy, template.max_length) == ('raise', 512)


def test_the_jsonl_writer_is_still_called_with_path_and_row():
    from swift.utils import append_to_jsonl

    assert list(inspect.signature(append_to_jsonl).parameters)[:2] == ['fpath', 'obj']
    from swift.trainers import TrainerFactory
    assert 'causal_lm' in TrainerFactory.TRAINER_MAPPING and 'gkd' in TrainerFactory.TRAINER_MAPPING


def test_every_key_gets_one_prefix_and_the_summary_history_too():
    row = {'loss': 1.0, 'eval_loss': 2.0, 'train/token_acc': 0.5, 'global_step/max_steps': '4/4',
           'train_runtime': 1.2, 'log_history': [{'loss': 1.0, 'step': 1}, {'eval_loss': 2.0, 'step': 1}]}
    assert prefixed(row) == {
        'train/loss': 1.0, 'eval/loss': 2.0, 'train/token_acc': 0.5, 'train/global_step/max_steps': '4/4',
        'train/train_runtime': 1.2,
        'train/log_history': [{'train/loss': 1.0, 'train/step': 1}, {'eval/loss': 2.0, 'train/step': 1}]}
    assert prefixed(prefixed(row)) == prefixed(row)


def test_ms_swifts_writers_write_prefixed_rows_only_during_a_run(tmp_path: Path):
    patcher = importlib.import_module('swift.trainers.patcher')
    original = patcher.append_to_jsonl
    with prefixed_logging_jsonl():
        patcher.append_to_jsonl(str(tmp_path / 'logging.jsonl'), {'loss': 1.0, 'elapsed_time': '1s'})
        patcher.append_to_jsonl(str(tmp_path / 'other.jsonl'), {'loss': 1.0})
    assert patcher.append_to_jsonl is original
    assert json.loads((tmp_path / 'logging.jsonl').read_text()) == {'train/loss': 1.0, 'train/elapsed_time': '1s'}
    assert json.loads((tmp_path / 'other.jsonl').read_text()) == {'loss': 1.0}


# What the source scan looks for, besides private names: calls that hook a library's modules.
HOOKS = ('register_forward_pre_hook', 'register_forward_hook', 'register_full_backward_hook', 'register_hook')
SRC = Path(__file__).resolve().parents[1] / 'src'


def _project_names() -> tuple[set[str], set[str]]:
    """(every name the project defines: functions, classes, attributes it stores on its own objects, class-level
    names; the attributes alone), over all of ``src``."""
    names, attributes = set(), set()
    for path in SRC.rglob('*.py'):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(node.name)
            if isinstance(node, ast.ClassDef):
                for item in node.body:
                    targets = item.targets if isinstance(item, ast.Assign) else [getattr(item, 'target', None)]
                    attributes.update(t.id for t in targets if isinstance(t, ast.Name))
                    if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)):
                        attributes.add(item.name)
            elif (isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)
                  and isinstance(node.value, ast.Name) and node.value.id in ('self', 'cls')):
                attributes.add(node.attr)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    return names | attributes, attributes


def _uses(path: Path, names: set[str], attributes: set[str]) -> set[str]:
    """The library touches in one file, as the tokens ``PRIVATE_READS`` / ``IN_PLACE`` list them."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Attribute):
            private = node.attr.startswith('_') and not node.attr.startswith('__')
            if isinstance(node.ctx, ast.Store) and node.attr == '__class__':
                found.add('__class__=')
            elif private and node.attr not in names:
                found.add(node.attr)
            elif (isinstance(node.ctx, ast.Store) and ast.unparse(node.value) not in ('self', 'cls')
                  and node.attr not in attributes):
                found.add(f'{node.attr}=')
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.update(a.name for a in node.names if a.name.startswith('_') and not a.name.startswith('__'))
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in HOOKS:
            found.add(f'{node.func.attr}()')
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == 'setattr' and (
                isinstance(node.args[0], ast.Name) and node.args[0].id not in names):
            found.add('setattr()')
    return found


def test_every_touch_of_a_library_outside_the_seams_module_is_listed_there():
    names, attributes = _project_names()
    listed = {path: set(PRIVATE_READS.get(path, {})) | set(IN_PLACE.get(path, {}))
              for path in {*PRIVATE_READS, *IN_PLACE}}
    found = {}
    for path in sorted(SRC.rglob('*.py')):
        relative = str(path.relative_to(SRC))
        if relative != 'swift_seams.py' and (uses := _uses(path, names, attributes)):
            found[relative] = uses
    unlisted = {path: sorted(uses - listed.get(path, set())) for path, uses in found.items()
                if uses - listed.get(path, set())}
    assert unlisted == {}, 'list these in src/swift_seams.py (PRIVATE_READS / IN_PLACE), or move them there'
    stale = {path: sorted(uses - found.get(path, set())) for path, uses in listed.items()
             if uses - found.get(path, set())}
    assert stale == {}, 'src/swift_seams.py lists uses the source no longer has'


@pytest.mark.parametrize('path,name,owner', sorted(
    (path, name, owner) for path, reads in PRIVATE_READS.items() for name, (owner, _) in reads.items()))
def test_every_private_name_read_exists_at_the_pinned_versions(path: str, name: str, owner: str):
    module, cls_name = owner.split(':')
    cls = getattr(importlib.import_module(module), cls_name)
    sources = [inspect.getsource(c) for c in cls.__mro__ if c.__module__.split('.')[0] in ('swift', 'transformers')]
    assert hasattr(cls, name) or any(f'self.{name}' in source for source in sources), (
        f'{cls_name} no longer has {name}, which {path} reads; see src/swift_seams.py')


def test_every_override_of_a_library_private_method_is_listed():
    import src.trainers.gkd  # noqa: F401 - the project's classes that subclass the libraries'
    import src.trainers.grpo  # noqa: F401
    import src.trainers.rlhf_pipeline  # noqa: F401
    import src.trainers.sft_pipeline  # noqa: F401
    import src.trainers.telemetry  # noqa: F401

    listed = {method for _, _, method in OVERRIDDEN}
    unlisted = []
    for cls in _project_classes():
        for name, value in vars(cls).items():
            method = inspect.isfunction(value) or isinstance(value, (staticmethod, classmethod, property))
            if method and name.startswith('_') and not name.startswith('__') and any(
                    not base.__module__.startswith('src.') and hasattr(base, name) for base in cls.__mro__[1:]):
                if name not in listed:
                    unlisted.append(f'{cls.__qualname__}.{name}')
    assert unlisted == [], 'list these overrides in OVERRIDDEN (src/swift_seams.py)'


def _project_classes() -> list[type]:
    import sys

    return [value for module_name, module in list(sys.modules.items()) if module_name.startswith('src.')
            for value in vars(module).values()
            if isinstance(value, type) and value.__module__ == module_name]


def test_under_deepspeed_qwen3_vl_generation_sees_its_image(tiny_model: Path, monkeypatch):
    """ms-swift's DeepSpeed forward for Qwen3-VL ignores the `mm_encoder_outputs` transformers generates with, so the
    model answers without its image. With the seam, generation under DeepSpeed equals generation without it. When
    ms-swift reads them itself, the first assertion fails: drop ``generation_sees_images``."""
    import swift.model.models.qwen as swift_qwen
    import torch
    from PIL import Image
    from swift.model import get_model_processor

    from src.swift_seams import generation_sees_images

    model, processor = get_model_processor(str(tiny_model), model_type='qwen3_vl', torch_dtype=torch.float32)
    messages = [{'role': 'user', 'content': [{'type': 'image'}, {'type': 'text', 'text': 'Describe it.'}]}]
    inputs = processor(text=[processor.apply_chat_template(messages, add_generation_prompt=True)],
                       images=[Image.new('RGB', (64, 64), (120, 30, 200))], return_tensors='pt')

    def scores(deepspeed: bool) -> torch.Tensor:
        monkeypatch.setattr(swift_qwen, 'is_deepspeed_enabled', lambda: deepspeed)
        out = model.generate(**inputs, max_new_tokens=3, do_sample=False, output_scores=True,
                             return_dict_in_generate=True)
        return torch.stack(out.scores)

    reference = scores(deepspeed=False)
    assert not torch.equal(scores(deepspeed=True), reference), 'ms-swift reads mm_encoder_outputs now'
    assert generation_sees_images(model) == 1 and generation_sees_images(model) == 0, 'once per model'
    assert torch.equal(scores(deepspeed=True), reference)


def test_a_process_of_a_multi_process_run_leaves_with_its_code_output_and_exit_handlers(tmp_path: Path):
    """Such a process skips the C++ teardown (it aborted runs that had finished) but nothing Python's exit does."""
    marker = tmp_path / 'handler_ran'
    script = ('import atexit, concurrent.futures, ctypes, pathlib, sys, threading, time\n'
              'from src.swift_seams import leave_without_teardown\n'
              f'atexit.register(lambda: pathlib.Path({str(marker)!r}).write_text("yes"))\n'
              'threading.Thread(target=lambda: (time.sleep(0.5), print("thread finished"))).start()\n'
              'concurrent.futures.ThreadPoolExecutor(1).submit(print, "pool ran")  # never shut down, as ms-swift\'s\n'
              'print("buffered line", end="")\n'
              'ctypes.CDLL(None).printf(b"from C\\n")\n'
              'leave_without_teardown(3)\n')
    for world in ('2', '1'):
        marker.unlink(missing_ok=True)
        done = subprocess.run([sys.executable, '-c', script], cwd=Path(__file__).parents[1], capture_output=True,
                              text=True, env={**os.environ, 'WORLD_SIZE': world}, timeout=60)
        assert done.returncode == 3, done.stderr
        assert 'buffered line' in done.stdout and 'thread finished' in done.stdout and 'pool ran' in done.stdout
        assert 'from C' in done.stdout, 'the C library\'s buffer is flushed too'
        assert marker.read_text() == 'yes'


def test_fsdp2_activation_checkpointing_recomputes_with_the_forwards_dropout_masks():
    """accelerate's own FSDP2 layer wrapping on a module with dropout: without the seam the backward pass recomputes
    with new masks and the gradients are another forward's; with it they equal the unwrapped module's. When accelerate
    keeps the random state itself, the first assertion fails and ``fsdp2_recompute_keeps_rng`` can go."""
    import types

    import accelerate.accelerator as accelerator_module
    import torch
    from accelerate.utils import FullyShardedDataParallelPlugin, fsdp_utils

    from src.swift_seams import fsdp2_recompute_keeps_rng

    assert 'preserve_rng_state=False' in inspect.getsource(fsdp_utils.fsdp2_apply_ac), 'accelerate changed it'

    class Block(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.linear, self.dropout = torch.nn.Linear(8, 8), torch.nn.Dropout(0.5)

        def forward(self, x):
            return self.dropout(self.linear(x))

    class Net(torch.nn.Module):
        _no_split_modules = ['Block']

        def __init__(self):
            super().__init__()
            self.blocks = torch.nn.ModuleList([Block(), Block()])

        def forward(self, x):
            for block in self.blocks:
                x = block(x)
            return x

    plugin = FullyShardedDataParallelPlugin(fsdp_version=2, auto_wrap_policy='transformer_based_wrap',
                                            transformer_cls_names_to_wrap=['Block'], activation_checkpointing=True)
    accelerator = types.SimpleNamespace(state=types.SimpleNamespace(fsdp_plugin=plugin))

    def gradients(wrap=None) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = Net()
        net = wrap(accelerator, net) if wrap else net
        torch.manual_seed(1)
        net(torch.ones(4, 8)).sum().backward()
        return [p.grad for p in net.parameters()]

    plain = gradients()
    assert not all(torch.allclose(a, b) for a, b in zip(plain, gradients(fsdp_utils.fsdp2_apply_ac)))
    fsdp2_recompute_keeps_rng()
    assert all(torch.allclose(a, b) for a, b in zip(plain, gradients(accelerator_module.fsdp2_apply_ac)))
    assert not fsdp2_recompute_keeps_rng(), 'once per process'


def test_saved_safetensors_files_get_the_mode_of_any_other_file(tmp_path):
    """safetensors 0.8 wrote every weights file 0600 (its temporary file's mode), so another user or a serving
    process could not read a checkpoint. In a fresh process: without the seam save_file gives 0600 (when that fails,
    safetensors writes plain modes itself and ``safetensors_keep_file_modes`` can go); with it, a new file gets
    0666 less the umask, as ``open()`` gives, and an existing file keeps its own mode; transformers' ``save_pretrained``
    and peft's adapter save are covered however they imported ``save_file``."""
    probe = f'''
import os, stat, torch
from safetensors.torch import save_file
from transformers.modeling_utils import safe_save_file
os.umask(0o027)
def mode(p): return oct(stat.S_IMODE(os.stat(p).st_mode))
save_file({{"a": torch.zeros(2)}}, "{tmp_path}/before.safetensors")
from src.swift_seams import safetensors_keep_file_modes
assert safetensors_keep_file_modes() and not safetensors_keep_file_modes()
save_file({{"a": torch.zeros(2)}}, "{tmp_path}/new.safetensors")
safe_save_file({{"a": torch.zeros(2)}}, "{tmp_path}/transformers.safetensors", metadata={{"format": "pt"}})
os.chmod("{tmp_path}/before.safetensors", 0o604)
save_file({{"a": torch.ones(2)}}, "{tmp_path}/before.safetensors")
print(mode("{tmp_path}/new.safetensors"), mode("{tmp_path}/transformers.safetensors"),
      mode("{tmp_path}/before.safetensors"))
'''
    before = subprocess.run([sys.executable, '-c', 'import os, torch\nfrom safetensors.torch import save_file\n'
                             f'save_file({{"a": torch.zeros(2)}}, "{tmp_path}/plain.safetensors")'], check=True)
    assert before.returncode == 0
    assert oct((tmp_path / 'plain.safetensors').stat().st_mode & 0o777) == '0o600', 'safetensors fixed its modes'
    done = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).parents[1], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ['0o640', '0o640', '0o604']


def test_checkpoint_rotation_counts_and_deletes_checkpoint_folders_only(tmp_path):
    """transformers listed every ``checkpoint-*`` folder for ``save_total_limit``, so a resumed run deleted
    ``checkpoint-2-merged/`` (swift export's, or a stage-2 run's base) as step 2. In a fresh process: without the seam
    transformers' own rotation deletes it (when that fails, transformers lists checkpoints only and
    ``rotation_counts_checkpoints_only`` can go); with it only the oldest ``checkpoint-<N>`` goes."""
    probe = '''
import sys
from pathlib import Path
from transformers.trainer_utils import rotate_checkpoints
root = Path(sys.argv[1])
for name in ('checkpoint-2', 'checkpoint-2-merged', 'checkpoint-4', 'checkpoint-6', 'incomplete-checkpoint-8'):
    (root / name).mkdir(parents=True)
if sys.argv[2] == 'seam':
    from src.swift_seams import rotation_counts_checkpoints_only
    assert rotation_counts_checkpoints_only() and not rotation_counts_checkpoints_only()
    from swift.trainers import mixin
    from transformers import trainer
    assert mixin.sort_checkpoints is trainer.sort_checkpoints
rotate_checkpoints(str(root), save_total_limit=2)
print(' '.join(sorted(p.name for p in root.iterdir())))
'''
    kept = {}
    for mode in ('plain', 'seam'):
        done = subprocess.run([sys.executable, '-c', probe, str(tmp_path / mode), mode], cwd=Path(__file__).parents[1],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr[-2000:]
        kept[mode] = done.stdout.split()
    assert 'checkpoint-2-merged' not in kept['plain'], 'transformers now lists checkpoint folders only'
    assert kept['seam'] == ['checkpoint-2-merged', 'checkpoint-4', 'checkpoint-6', 'incomplete-checkpoint-8']
