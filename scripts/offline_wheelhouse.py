"""Download into one folder exactly the wheels the toolkit needs on an offline machine beyond what it already has.

    python scripts/offline_wheelhouse.py --python 3.12 --have torch,transformers,peft,accelerate --out wheelhouse
    python scripts/offline_wheelhouse.py --python 3.12 --have-preset gpu-node --skip av,decord --out wheelhouse
    python scripts/offline_wheelhouse.py ... --dry-run          # the plan only: names, versions, no download

What is needed: the toolkit's direct requirements (pyproject.toml) and everything they require, read from the package
metadata of this machine's environment (the one `scripts/install.sh` built) with the markers evaluated for the
target Python on Linux. The walk stops at packages the target already has (``--have``): their own dependencies are
there too, since pip installed them with them. Each remaining package is downloaded at the version of
requirements/lock.txt, as a wheel for the target (CPython ``--python``, manylinux x86_64, or a pure-Python wheel),
without dependencies: the set is complete by construction. ``--with-deepspeed`` adds DeepSpeed, built here as a
pure-Python wheel (PyPI has only its source; its CUDA ops compile on first use), and the dependencies it lacks there.
``--skip`` leaves packages out on purpose (``av,decord`` only read video records). The total size is printed; more
than ``--max-mb`` (default 60) exits 1.

On the offline machine (docs: README, "Offline GPU node"):

    python3 -m pip install --no-index --no-deps wheelhouse/*.whl
    python3 -m src.sft --config configs/x.yaml      # from a copy of this repository
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO = Path(__file__).resolve().parents[1]
# What this workplace's GPU image holds (../.library/device/KINDS.md, "Python packages already there").
GPU_NODE = ('absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs botorch build '
            'certifi charset-normalizer chex click cloudpickle cmake colorama contourpy coverage cuda-bindings '
            'cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython diffrax e3nn einops equinox etils '
            'execnet filelock flatbuffers flax fonttools formulaic frozenlist fsspec gpytorch grpcio h11 h5py hf-xet '
            'httpcore httpx huggingface-hub humanize hypothesis idna imageio iniconfig interface-meta jax '
            'jax-cuda13-pjrt jax-cuda13-plugin jaxlib jaxtyping jinja2 joblib kiwisolver lazy-loader lightning '
            'lightning-utilities linear-operator lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib '
            'mdurl meson ml-dtypes mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals '
            'networkx ninja numba numba-cuda numpy numpyro nvidia-cublas nvidia-cuda-cupti nvidia-cuda-nvrtc '
            'nvidia-cuda-runtime nvidia-cudnn-cu13 nvidia-cufft nvidia-cufile nvidia-curand nvidia-cusolver '
            'nvidia-cusparse nvidia-cusparselt-cu13 nvidia-ml-py nvidia-nccl-cu13 nvidia-nvjitlink '
            'nvidia-nvshmem-cu13 nvidia-nvtx onnx onnx-ir onnxruntime onnxscript opencv-python-headless optax '
            'opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging pandas pathspec patsy peft pillow pip '
            'pluggy portalocker prometheus-client propcache protobuf psutil pyarrow pybind11 py-cpuinfo pygments '
            'pyparsing pyproject-hooks pyre-extensions pytest pytest-benchmark pytest-cov pytest-mock pytest-timeout '
            'pytest-xdist python-dateutil pytorch-lightning pyyaml regex requests rich sacrebleu safetensors '
            'scikit-build-core scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools '
            'shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard '
            'tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz torch '
            'torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers treescope triton typer '
            'typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug wheel wrapt xarray xxhash yarl '
            'zipp').split()
PRESETS = {'gpu-node': GPU_NODE}
DEEPSPEED = 'deepspeed==0.19.8'


def direct_requirements() -> list[Requirement]:
    data = tomllib.loads((REPO / 'pyproject.toml').read_text())
    return [Requirement(r) for r in data['project']['dependencies']]


def locked_versions() -> dict[str, str]:
    versions = {}
    for line in (REPO / 'requirements' / 'lock.txt').read_text().splitlines():
        if '==' in line and not line.startswith('#'):
            name, version = line.split('==', 1)
            versions[canonicalize_name(name)] = version.strip()
    return versions


def _applies(requirement: Requirement, python: str) -> bool:
    """The requirement's marker on the target (Linux x86_64, CPython ``python``), no extras."""
    if requirement.marker is None:
        return True
    environment = {'python_version': python, 'python_full_version': f'{python}.0', 'sys_platform': 'linux',
                   'platform_system': 'Linux', 'platform_machine': 'x86_64', 'os_name': 'posix',
                   'implementation_name': 'cpython', 'platform_python_implementation': 'CPython', 'extra': ''}
    return requirement.marker.evaluate(environment)


def needed(roots: list[Requirement], have: set[str], skip: set[str], python: str) -> list[str]:
    """Canonical names of every package reachable from ``roots`` through this environment's metadata, the walk
    stopping at ``have`` and ``skip``."""
    seen: set[str] = set()
    stack = [canonicalize_name(r.name) for r in roots if _applies(r, python)]
    while stack:
        name = stack.pop()
        if name in seen or name in have or name in skip:
            continue
        seen.add(name)
        try:
            requires = metadata.distribution(name).requires or []
        except metadata.PackageNotFoundError:
            raise SystemExit(f'{name} is not installed here; run `bash scripts/install.sh` first (the plan is read '
                             'from the installed packages)') from None
        stack += [canonicalize_name(r.name) for r in map(Requirement, requires) if _applies(r, python)]
    return sorted(seen)


def _target_flags(python: str) -> list[str]:
    tag = python.replace('.', '')
    return ['--python-version', python, '--implementation', 'cp', '--abi', f'cp{tag}', '--abi', 'abi3', '--abi',
            'none', '--platform', 'manylinux_2_28_x86_64', '--platform', 'manylinux_2_17_x86_64', '--platform',
            'manylinux2014_x86_64', '--platform', 'manylinux2010_x86_64', '--platform', 'any']


def download(names: list[str], versions: dict[str, str], python: str, out: Path) -> list[str]:
    """Each ``name==locked version`` as a target wheel, no dependencies. A package published only as source is built
    here when that gives a pure-Python wheel; one that would need compiling for the target is left out and returned
    (the ones ms-swift pulls in this way serve hub uploads, which an offline machine does not make)."""
    left_out = []
    for name in names:
        spec = f'{name}=={versions[name]}' if name in versions else name
        fetched = subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--no-deps',
                                  '--only-binary=:all:', *_target_flags(python), '-d', str(out), spec],
                                 capture_output=True, text=True)
        if fetched.returncode == 0:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            built = subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps', '-w', tmp, spec],
                                   capture_output=True, text=True)
            wheels = list(Path(tmp).glob('*.whl'))
            if built.returncode == 0 and wheels and wheels[0].name.endswith('-none-any.whl'):
                shutil.move(str(wheels[0]), out / wheels[0].name)
            else:
                left_out.append(spec)
    return left_out



def deepspeed_wheel(have: set[str], python: str, out: Path) -> list[str]:
    """Build DeepSpeed's wheel here (no CUDA ops: they are built on first use) and download what it needs beyond
    ``have``; returns the names of those dependencies."""
    env = {**os.environ, 'DS_BUILD_OPS': '0', 'DS_BUILD_AIO': '0'}
    subprocess.run([sys.executable, '-m', 'pip', 'wheel', '--quiet', '--no-deps', '--no-build-isolation', '-w',
                    str(out), DEEPSPEED], check=True, env=env)
    [wheel] = out.glob('deepspeed-*.whl')
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, '-m', 'zipfile', '-e', str(wheel), tmp], check=True)
        [meta] = Path(tmp).glob('*.dist-info/METADATA')
        requires = [Requirement(line.split(':', 1)[1].strip()) for line in meta.read_text().splitlines()
                    if line.startswith('Requires-Dist:')]
    missing = [r for r in requires if _applies(r, python) and canonicalize_name(r.name) not in have]
    if missing:
        subprocess.run([sys.executable, '-m', 'pip', 'download', '--quiet', '--only-binary=:all:',
                        *_target_flags(python), '-d', str(out), *[str(r) for r in missing]], check=True)
    return [canonicalize_name(r.name) for r in missing]


def _names(values: list[str]) -> set[str]:
    return {canonicalize_name(n) for value in values for n in value.split(',') if n.strip()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--python', default='3.12', help='the target Python (major.minor)')
    parser.add_argument('--have', action='append', default=[], help='packages the target has, comma separated')
    parser.add_argument('--have-preset', choices=sorted(PRESETS), help='a known target\'s package list')
    parser.add_argument('--skip', action='append', default=[], help='packages to leave out on purpose')
    parser.add_argument('--with-deepspeed', action='store_true', help=f'add {DEEPSPEED} (built here)')
    parser.add_argument('--out', type=Path, default=Path('wheelhouse'))
    parser.add_argument('--max-mb', type=float, default=60.0)
    parser.add_argument('--dry-run', action='store_true', help='print the plan, download nothing')
    args = parser.parse_args(argv)
    have = _names(args.have) | set(PRESETS.get(args.have_preset, ()))
    skip = _names(args.skip)
    versions = locked_versions()
    plan = needed(direct_requirements(), have, skip, args.python)
    print(f'{len(plan)} packages for Python {args.python} beyond what the target has:')
    for name in plan:
        print(f'  {name}=={versions.get(name, "?")}')
    if skip:
        print(f'left out on purpose: {", ".join(sorted(skip))}')
    if args.dry_run:
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    left_out = download(plan, versions, args.python, args.out)
    if left_out:
        print(f'left out (source only, would compile for the target): {", ".join(left_out)}')
    if args.with_deepspeed:
        extra = deepspeed_wheel(have | set(plan), args.python, args.out)
        print(f'deepspeed built; its dependencies downloaded: {", ".join(extra) or "none"}')
    wheels = sorted(args.out.glob('*.whl'))
    size = sum(w.stat().st_size for w in wheels) / 2**20
    print(f'{len(wheels)} wheels, {size:.1f} MB in {args.out}')
    if size > args.max_mb:
        print(f'error: more than --max-mb {args.max_mb:g} MB; leave out what the target does not need (--skip)',
              file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
