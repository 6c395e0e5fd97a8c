"""benchmarks/gpu_suite.sh: its plan fits the window, its scripts exist, and a guarded step never stops the rest."""
import subprocess
import sys

from tests.conftest import REPO

sys.path.insert(0, str(REPO / 'benchmarks'))
import gpu_suite  # noqa: E402


def test_dry_run_checks_the_plan_the_imports_and_the_wheel_list():
    done = subprocess.run(['bash', 'benchmarks/gpu_suite.sh', '--dry-run'], cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith('plan: 6 steps') and 'budget 570 s' in lines[0] and 'over the budget' not in lines[0]
    assert [line.split()[0] for line in lines[1:7]] == ['zero2', 'zero3', 'fsdp2', 'zero2_offload', 'zero3_offload',
                                                        'entrypoint']
    assert 'packages for Python 3.12 beyond what the target has' in done.stdout


def test_with_a_wheelhouse_the_install_comes_first_and_everything_fits_nine_minutes(tmp_path):
    (tmp_path / 'x-1.0-py3-none-any.whl').write_bytes(b'')
    steps = gpu_suite.plan(sys.executable, tmp_path, tmp_path)
    assert steps[0].name == 'install' and sum(s.limit_s for s in steps) <= gpu_suite.BUDGET_S
    with_throughput = gpu_suite.plan(sys.executable, tmp_path, tmp_path, throughput=True)
    assert with_throughput[-1].name == 'throughput'


def test_the_entrypoint_step_runs_options_the_benchmark_accepts(tmp_path):
    """The suite once ran the entrypoint with a config the loader refused, found only on the GPU: the command line
    it builds must at least parse."""
    import kd_overhead

    step = next(s for s in gpu_suite.plan(sys.executable, None, tmp_path) if s.name == 'entrypoint')
    flags = kd_overhead.arguments().parse_args(step.command[2:])
    assert flags.arch == '4b' and flags.runs == ['sft', 'gkd'] and flags.steps * flags.batch * flags.grad_accum == 12


def test_a_failing_or_overrunning_step_is_reported_and_the_report_goes_on(tmp_path):
    steps = [gpu_suite.Step('fails', [sys.executable, '-c', 'import sys; print("boom"); sys.exit(3)'], 10),
             gpu_suite.Step('slow', [sys.executable, '-c', 'import time; time.sleep(5)'], 1),
             gpu_suite.Step('absent', ['true'], 1, ('no_such_module_here', ))]
    results = [(s, *gpu_suite.run_step(s)) for s in steps]
    statuses = [status for _, status, _, _ in results]
    assert statuses == ['failed (exit 3)', 'stopped at its 1 s limit', 'skipped: no_such_module_here not importable']
    report = gpu_suite.markdown('test device', results)
    assert '| fails | failed (exit 3) |' in report and 'boom' in report
