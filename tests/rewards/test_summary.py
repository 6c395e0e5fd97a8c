"""Every summary reward on the same table of completions, with exact expected values."""
from __future__ import annotations

import unicodedata

import pytest

from src.rewards import IRRELEVANT, PARSE_PENALTY, REWARDS, SCORERS, parse_summary

REF = 'dataset: roads\nobjects: 5\n{"car": 3, "车道线": 2}'
CASES = {  # name: (completion, reference)
    'perfect': (REF, REF),
    'wrong header': ('dataset: rivers\nobjects: 4\n{"car": 3, "车道线": 2}', REF),
    'broken json': ('dataset: roads\nobjects: 5\n{"car": 3, "车道线": 2', REF),
    'extra text': (REF + '\nHope this helps!', REF),
    'wrong counts': ('dataset: roads\nobjects: 5\n{"car": 1, "车道线": 4}', REF),
    'partial content': ('dataset: roads\nobjects: 3\n{"car": 3}', REF),
    'irrelevant correct': (IRRELEVANT, IRRELEVANT),
    'irrelevant missed': (IRRELEVANT, REF),
    'irrelevant described': (REF, IRRELEVANT),
    'unicode decomposed': (unicodedata.normalize('NFD', 'dataset: cafés\nobjects: 1\n{"café": 1}'),
                           'dataset: cafés\nobjects: 1\n{"café": 1}'),
    'not a summary': ('I cannot see the image.', REF),
    'json without header': ('{"car": 3, "车道线": 2}', REF),
    'text around json': ('Counts: {"car": 3, "车道线": 2} done', REF),
    'braces before json': ('Counts {per label}:\n{"car": 3, "车道线": 2}', REF),
    'full-width total': ('dataset: roads\nobjects: ５\n{"car": 3, "车道线": 2}', REF),
    'a key twice': ('dataset: roads\nobjects: 5\n{"car": 1, "车道线": 2, "car": 3}', REF),
}
ORDER = list(CASES)
EXPECTED = {  # one value per case, in ORDER
    'summary_format':        [1, 1, 0, 0, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
    'summary_parse':         [0, 0, -1, 0, 0, 0, 0, -1, -1, 0, -1, 0, 0, 0, 0, -1],
    'summary_header':        [1, 0, 1, 1, 1, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1],
    'summary_dataset':       [1, 0, 1, 1, 1, 1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 1],
    'summary_objects_total': [1, 0.8, 1, 1, 1, 0.6, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1],
    'summary_content_f1':    [1, 1, 0, 1, 0.6, 0.75, 1, 0, 0, 1, 0, 1, 1, 1, 1, 0],
    'summary_content':       [1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0],
}


@pytest.mark.parametrize('name', list(EXPECTED))
def test_reward_table(name):
    completions = [CASES[case][0] for case in ORDER]
    references = [CASES[case][1] for case in ORDER]
    got = REWARDS[name](completions, solution=references, images=[None] * len(ORDER))
    assert dict(zip(ORDER, got)) == pytest.approx(dict(zip(ORDER, map(float, EXPECTED[name]))))


def test_every_reward_is_in_the_table_and_its_name_is_what_ms_swift_logs():
    assert set(EXPECTED) == set(REWARDS) == set(SCORERS)
    assert all(reward.__name__ == name for name, reward in REWARDS.items())


@pytest.mark.parametrize('completion', [
    None, 42, '', '\n\n', '{', 'dataset: x\nobjects: -1\n{}', '[1, 2]',
    # what a policy degenerates into within a completion budget: a run of digits, of brackets, a huge count
    'dataset: roads\nobjects: 9' + '9' * 308 + '\n{"car": 3}', 'dataset: roads\nobjects: 5\n{"car": ' + '[' * 1000,
    'dataset: roads\nobjects: 1' + '0' * 4400 + '\n{}', 'dataset: roads\nobjects: 5\n{"car": 1' + '0' * 4400 + '}',
    'dataset: roads\nobjects: 5\n{"car": ' + '9' * 300 + '}', '{' * 5000])
def test_garbage_never_raises(completion):
    for reward in REWARDS.values():
        [value] = reward([completion], solution=[REF])
        assert PARSE_PENALTY <= value <= 1.0, (reward.__name__, value)


def test_parse_reads_the_parts_it_can():
    s = parse_summary('dataset: roads\nobjects: x\n{"car": 2} trailing')
    assert (s.dataset, s.total, s.counts, s.exact) == ('roads', None, {'car': 2}, False)
    assert parse_summary('  无关图片 \r\n').irrelevant
    s = parse_summary('{"car": 2}')  # no header: the counts still parse, the format is not exact
    assert (s.dataset, s.total, s.counts, s.exact) == (None, None, {'car': 2}, False)


def test_a_bad_reference_is_a_data_error():
    with pytest.raises(ValueError, match='reference summary does not follow the summary format'):
        REWARDS['summary_header'](['x'], solution=['not a summary'])


@pytest.mark.parametrize('reference,problem', [
    ('```\n' + REF + '\n```', 'does not follow the summary format'),
    ('dataset: roads\nobjects: 7\n{"car": 3}', 'says `objects: 7`, but its counts sum to 3'),
    ('dataset: roads\nobjects: 5\n{"car": 2, "car": 3}', 'does not follow the summary format'),
])
def test_a_reference_the_rewards_cannot_judge_against_is_refused_by_the_record_check(tmp_path, reference, problem):
    """Before training (the record check in summary mode), not at the GRPO step that samples the record."""
    from PIL import Image

    from src.datasets import BuildSettings, DenseCaptionDataset
    from src.datasets.record_check import check_uncached
    from tests.conftest import write_jsonl

    Image.new('RGB', (32, 32)).save(tmp_path / 'a.png')
    good = {'images': ['a.png'], 'width': 32, 'height': 32, 'summary': REF}
    data = write_jsonl(tmp_path / 'data.jsonl', [good, {**good, 'summary': reference}])
    report = check_uncached(DenseCaptionDataset(data, None, settings=BuildSettings(mode='summary')), workers=0)
    assert len(report.problems) == 1 and report.problems[0][0] == 1, report.lines()
    assert report.problems[0][1].startswith('`summary` ') and problem in report.problems[0][1], report.lines()


def test_registered_with_ms_swift_by_name():
    from swift.rewards import orms
    from swift.rlhf_trainers.utils import resolve_reward_funcs

    from src.rewards import register
    register()
    funcs, names = resolve_reward_funcs(['summary_format', 'summary_content_f1'], args=object())
    assert names == ['summary_format', 'summary_content_f1']
    assert funcs[1]([REF], solution=[REF]) == [1.0] and 'summary_parse' in orms


def test_the_config_knows_every_reward_by_name():
    from src.config.rlhf import REWARDS as CONFIG_REWARDS
    from src.rewards.summary import REWARDS

    assert CONFIG_REWARDS == tuple(REWARDS)
