"""Files in the shapes other projects document (LLaMA-Factory's data/, LLaVA's custom-data example, OpenAI's vision
fine-tuning format, a CSV from a spreadsheet), plus broken ones: each converts to records training accepts, or
fails with one clear error and writes nothing."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from public_data import csv_qa, llamafactory, llava, openai_messages, refcoco
from public_data.common import run
from src.datasets import DenseCaptionDataset
from tests.conftest import write_jsonl, write_video


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _trains(path: Path) -> None:
    """Every converted record builds as training builds it (template inputs, files resolved)."""
    dataset = DenseCaptionDataset(path, None)
    for idx in range(len(dataset)):
        dataset.inputs(idx)


@pytest.fixture
def factory_data(image_dir: Path, tmp_path: Path) -> Path:
    """LLaMA-Factory's data/ folder layout: mllm_demo.json, mllm_video_demo.json, mllm_demo_data/, dataset_info.json."""
    data = tmp_path / 'data'
    media = data / 'mllm_demo_data'
    media.mkdir(parents=True)
    shutil.copy(image_dir / 'a.png', media / '1.jpg')
    shutil.copy(image_dir / 'b.png', media / '2.jpg')
    write_video(media / '1.mp4')
    (data / 'mllm_demo.json').write_text(json.dumps([
        {'messages': [{'content': '<image>Who are they?', 'role': 'user'},
                      {'content': "They're Kane and Gretzka from Bayern Munich.", 'role': 'assistant'},
                      {'content': 'What are they doing?<image>', 'role': 'user'},
                      {'content': 'They are celebrating on the soccer field.', 'role': 'assistant'}],
         'images': ['mllm_demo_data/1.jpg', 'mllm_demo_data/2.jpg']},
        {'messages': [{'content': '<image>Who is he?', 'role': 'user'},
                      {'content': 'He is Thomas Muller.', 'role': 'assistant'}],
         'images': ['mllm_demo_data/1.jpg']},
    ], indent=2))
    (data / 'mllm_video_demo.json').write_text(json.dumps([
        {'messages': [{'content': '<video>Why is this video funny?', 'role': 'user'},
                      {'content': 'Because a baby is reading, and he is so cute!', 'role': 'assistant'}],
         'videos': ['mllm_demo_data/1.mp4']}]))
    (data / 'sharegpt_vision.json').write_text(json.dumps([
        {'conversations': [{'from': 'human', 'value': '<image>Describe the scene.'},
                           {'from': 'gpt', 'value': 'A red square.'}],
         'system': 'You are a careful annotator.', 'pictures': ['mllm_demo_data/1.jpg']},
        {'conversations': [{'from': 'human', 'value': 'Call the weather tool.'},
                           {'from': 'function_call', 'value': '{"name": "weather"}'}]}]))
    (data / 'alpaca_vision.json').write_text(json.dumps([
        {'instruction': 'What colour is the square?', 'input': '<image>', 'output': 'Red.',
         'images': ['mllm_demo_data/1.jpg']}]))
    (data / 'dataset_info.json').write_text(json.dumps({
        'mllm_demo': {'file_name': 'mllm_demo.json', 'formatting': 'sharegpt',
                      'columns': {'messages': 'messages', 'images': 'images'},
                      'tags': {'role_tag': 'role', 'content_tag': 'content', 'user_tag': 'user',
                               'assistant_tag': 'assistant'}},
        'mllm_video_demo': {'file_name': 'mllm_video_demo.json', 'formatting': 'sharegpt',
                            'columns': {'messages': 'messages', 'videos': 'videos'},
                            'tags': {'role_tag': 'role', 'content_tag': 'content', 'user_tag': 'user',
                                     'assistant_tag': 'assistant'}},
        'vision_sharegpt': {'file_name': 'sharegpt_vision.json', 'formatting': 'sharegpt',
                            'columns': {'messages': 'conversations', 'system': 'system', 'images': 'pictures'}},
        'vision_alpaca': {'file_name': 'alpaca_vision.json',
                          'columns': {'prompt': 'instruction', 'query': 'input', 'response': 'output',
                                      'images': 'images'}},
        'dpo_demo': {'file_name': 'dpo.json', 'ranking': True},
    }, indent=2))
    return data


def test_llamafactory_mllm_demo_as_it_is(factory_data: Path, tmp_path: Path):
    out = tmp_path / 'out' / 'demo.jsonl'
    assert run(llamafactory.main, ['--input', str(factory_data / 'mllm_demo.json'), '--out', str(out)]) == 0
    first, second = _read(out)
    assert first['images'] == ['../data/mllm_demo_data/1.jpg', '../data/mllm_demo_data/2.jpg']
    assert [m['role'] for m in first['messages']] == ['user', 'assistant', 'user', 'assistant']
    assert first['messages'][2]['content'] == 'What are they doing?<image>'
    assert second['messages'][-1] == {'role': 'assistant', 'content': 'He is Thomas Muller.'}
    _trains(out)


@pytest.mark.parametrize('name,check', [
    ('mllm_demo', lambda r: len(r) == 2 and len(r[0]['images']) == 2),
    ('mllm_video_demo', lambda r: r[0]['videos'] == ['../data/mllm_demo_data/1.mp4']),
    ('vision_sharegpt', lambda r: len(r) == 1 and r[0]['messages'][0] == {
        'role': 'system', 'content': 'You are a careful annotator.'} and r[0]['images']),
    ('vision_alpaca', lambda r: r[0]['messages'] == [{'role': 'user', 'content': 'What colour is the square?\n<image>'},
                                                     {'role': 'assistant', 'content': 'Red.'}]),
])
def test_llamafactory_registry_columns_and_tags(factory_data: Path, tmp_path: Path, capsys, name, check):
    out = tmp_path / 'out' / f'{name}.jsonl'
    assert run(llamafactory.main, ['--dataset-info', str(factory_data / 'dataset_info.json'), '--dataset', name,
                                   '--out', str(out)]) == 0
    records = _read(out)
    assert check(records), records
    _trains(out)
    if name == 'vision_sharegpt':
        assert 'tool calls are not supported' in capsys.readouterr().err


def test_llamafactory_json_lines_in_a_json_file_and_a_tools_column(factory_data: Path, tmp_path: Path, capsys):
    """The Hugging Face JSON loader LLaMA-Factory uses reads JSON Lines from a `.json` file; a record with tool
    definitions (glaive_toolcall's `tools` column) is refused with the reason, not converted without them."""
    rows = [{'conversations': [{'from': 'human', 'value': '<image>Describe.'}, {'from': 'gpt', 'value': 'A square.'}],
             'images': ['mllm_demo_data/1.jpg']},
            {'conversations': [{'from': 'human', 'value': 'Weather?'}, {'from': 'gpt', 'value': 'Sunny.'}],
             'tools': '[{"name": "weather"}]'}]
    (factory_data / 'lines.json').write_text(''.join(json.dumps(r) + '\n' for r in rows))
    info = json.loads((factory_data / 'dataset_info.json').read_text())
    info['lines'] = {'file_name': 'lines.json', 'formatting': 'sharegpt',
                     'columns': {'messages': 'conversations', 'images': 'images', 'tools': 'tools'}}
    (factory_data / 'dataset_info.json').write_text(json.dumps(info))
    out = tmp_path / 'lines.jsonl'
    assert run(llamafactory.main, ['--dataset-info', str(factory_data / 'dataset_info.json'), '--dataset', 'lines',
                                   '--out', str(out)]) == 0
    assert [r['messages'][-1]['content'] for r in _read(out)] == ['A square.']
    assert f'skipped {factory_data / "lines.json"}:2: tool definitions (`tools`) are not trained here' in (
        capsys.readouterr().err)


def test_llamafactory_media_paths_are_relative_to_the_registry_folder_and_a_system_turn_wins(factory_data: Path,
                                                                                                 tmp_path: Path):
    """LLaMA-Factory joins media paths to `media_dir`, which defaults to `dataset_dir` (dataset_info.json's folder),
    also for a data file in a subfolder; and a sharegpt item whose first turn is a system turn takes its system
    prompt from that turn, not from the `system` column (two system messages train nowhere)."""
    (factory_data / 'sub').mkdir()
    (factory_data / 'sub' / 'demo.json').write_text(json.dumps([
        {'conversations': [{'from': 'system', 'value': 'Turn system.'}, {'from': 'human', 'value': '<image>Hi'},
                           {'from': 'gpt', 'value': 'A square.'}],
         'system': 'Column system.', 'imgs': ['mllm_demo_data/1.jpg']}]))
    info = json.loads((factory_data / 'dataset_info.json').read_text())
    info['sub'] = {'file_name': 'sub/demo.json', 'formatting': 'sharegpt',
                   'columns': {'messages': 'conversations', 'system': 'system', 'images': 'imgs'}}
    (factory_data / 'dataset_info.json').write_text(json.dumps(info))
    out = tmp_path / 'sub.jsonl'
    assert run(llamafactory.main, ['--dataset-info', str(factory_data / 'dataset_info.json'), '--dataset', 'sub',
                                   '--out', str(out)]) == 0
    [record] = _read(out)
    assert record['images'] == ['data/mllm_demo_data/1.jpg']
    assert record['messages'][:2] == [{'role': 'system', 'content': 'Turn system.'},
                                      {'role': 'user', 'content': '<image>Hi'}]
    _trains(out)


def test_llamafactory_registry_errors(factory_data: Path, tmp_path: Path, capsys):
    info = str(factory_data / 'dataset_info.json')
    out = tmp_path / 'x.jsonl'
    assert run(llamafactory.main, ['--dataset-info', info, '--dataset', 'mllm', '--out', str(out)]) == 1
    assert "no dataset 'mllm'; similar: mllm_demo, mllm_video_demo" in capsys.readouterr().err
    assert run(llamafactory.main, ['--dataset-info', info, '--dataset', 'dpo_demo', '--out', str(out)]) == 1
    assert 'preference (ranking) dataset' in capsys.readouterr().err and not out.exists()


def test_llava_documented_example_with_its_trailing_comma_is_one_error_and_no_output(tmp_path: Path, capsys):
    source = tmp_path / 'llava.json'
    source.write_text('[\n  {\n    "id": "997bb945",\n    "image": "part-000001/997bb945.jpg",\n'
                      '    "conversations": [\n      {"from": "human", "value": "<image>\\nWrite a prompt."},\n'
                      '      {"from": "gpt", "value": "a beautiful painting"}\n    ]\n  },\n]\n')
    out = tmp_path / 'llava.jsonl'
    assert run(llava.main, ['--input', str(source), '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert f'error: {source}:10:1: invalid JSON' in err and 'nothing was written' in err
    assert not out.exists() and not list(tmp_path.glob('.llava.jsonl*'))


def test_llava_keeps_video_entries(tmp_path: Path):
    write_video(tmp_path / 'clips' / 'v.mp4')
    source = tmp_path / 'llava_video.json'
    source.write_text(json.dumps([{'id': 'v1', 'video': 'clips/v.mp4', 'conversations': [
        {'from': 'human', 'value': '<video>\nWhat moves?'}, {'from': 'gpt', 'value': 'A white square.'}]}]))
    out = tmp_path / 'video.jsonl'
    assert run(llava.main, ['--input', str(source), '--out', str(out)]) == 0
    assert _read(out) == [{'messages': [{'role': 'user', 'content': '<video>\nWhat moves?'},
                                        {'role': 'assistant', 'content': 'A white square.'}],
                           'videos': ['clips/v.mp4']}]
    _trains(out)


def test_llava_video_items_marked_with_image_and_a_system_turn_first(image_dir: Path, tmp_path: Path, capsys):
    """LLaVA-Video-178K marks its video with `<image>`; an item may open with a system turn, and a placeholder the
    text does not place goes into the first user turn, not the system prompt."""
    write_video(tmp_path / 'clips' / 'v.mp4')
    shutil.copy(image_dir / 'a.png', tmp_path / 'a.png')
    source = tmp_path / 'llava.json'
    source.write_text(json.dumps([
        {'id': 'v1', 'video': 'clips/v.mp4', 'conversations': [
            {'from': 'human', 'value': '<image>\nWhat moves?'}, {'from': 'gpt', 'value': 'A white square.'}]},
        {'id': 's1', 'image': 'a.png', 'conversations': [
            {'from': 'system', 'value': 'Be brief.'}, {'from': 'human', 'value': 'Colour?'},
            {'from': 'gpt', 'value': 'Red.'}]}]))
    out = tmp_path / 'out.jsonl'
    assert run(llava.main, ['--input', str(source), '--out', str(out)]) == 0
    video, system = _read(out)
    assert video['messages'][0]['content'] == '<video>\nWhat moves?' and video['videos'] == ['clips/v.mp4']
    assert system['messages'][:2] == [{'role': 'system', 'content': 'Be brief.'},
                                      {'role': 'user', 'content': '<image>\nColour?'}]
    assert '1  <image> of a video item read as <video> (kept)' in capsys.readouterr().err
    _trains(out)


def test_openai_vision_format_remote_urls_and_tool_calls(image_dir: Path, tmp_path: Path, capsys):
    source = tmp_path / 'openai.jsonl'
    lines = [
        {'messages': [{'role': 'system', 'content': 'You are an assistant that identifies uncommon cheeses.'},
                      {'role': 'user', 'content': 'What is this cheese?'},
                      {'role': 'user', 'content': [{'type': 'image_url', 'image_url': {
                          'url': 'https://upload.wikimedia.org/wikipedia/commons/3/36/Danbo_Cheese.jpg'}}]},
                      {'role': 'assistant', 'content': 'Danbo'}]},
        {'messages': [{'role': 'user', 'content': 'Weather?'},
                      {'role': 'assistant', 'tool_calls': [{'id': 'call_1', 'type': 'function',
                                                            'function': {'name': 'weather', 'arguments': '{}'}}]}]},
    ]
    source.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    out = tmp_path / 'out.jsonl'
    assert run(openai_messages.main, ['--input', str(source), '--out', str(out)]) == 1
    err = capsys.readouterr().err
    assert f'skipped {source}:1: remote image URL (training reads local files only' in err
    assert f'skipped {source}:2: tool calls are not supported' in err
    assert 'error: no record could be converted (remote image URL' in err and 'tool calls are not supported' in err
    assert 'was not written' in err
    assert not out.exists()


def test_openai_developer_role_names_and_tool_definitions(image_dir: Path, tmp_path: Path, capsys):
    """OpenAI's newer `developer` role is the system message; a message's `name` is not used and counted, never
    dropped without a word; a line with `tools` (function-calling fine-tuning) is refused."""
    source = tmp_path / 'openai.jsonl'
    image = {'type': 'image_url', 'image_url': {'url': 'images/a.png'}}
    lines = [{'messages': [{'role': 'developer', 'content': 'Be brief.'},
                           {'role': 'user', 'name': 'alice', 'content': [image, {'type': 'text', 'text': 'Colour?'}]},
                           {'role': 'assistant', 'content': 'Red.'}]},
             {'messages': [{'role': 'user', 'content': [image]}, {'role': 'assistant', 'content': 'Red.'}],
              'tools': [{'type': 'function', 'function': {'name': 'weather'}}]}]
    source.write_text(''.join(json.dumps(line) + '\n' for line in lines))
    out = tmp_path / 'out.jsonl'
    assert run(openai_messages.main, ['--input', str(source), '--out', str(out)]) == 0
    [record] = _read(out)
    assert [m['role'] for m in record['messages']] == ['system', 'user', 'assistant']
    err = capsys.readouterr().err
    assert '1  developer message read as system (kept)' in err and '1  message key `name` not used (kept)' in err
    assert f'skipped {source}:2: tool definitions are not supported' in err
    _trains(out)


def test_openai_image_url_items_train_directly_too(image_dir: Path, tmp_path: Path):
    """A JSONL in OpenAI's form needs no conversion when its images are local: `image_url` items are images."""
    path = tmp_path / 'direct.jsonl'
    path.write_text(json.dumps({'messages': [
        {'role': 'user', 'content': [{'type': 'image_url', 'image_url': {'url': 'images/a.png'}},
                                     {'type': 'text', 'text': 'Colour?'}]},
        {'role': 'assistant', 'content': 'Red.'}]}) + '\n')
    inputs = DenseCaptionDataset(path, None).inputs(0)
    assert inputs['messages'][0]['content'][0] == {'type': 'image', 'image': str(image_dir / 'a.png')}


def test_out_equal_to_the_input_is_refused_before_anything_is_written(tmp_path: Path, capsys):
    source = tmp_path / 'same.jsonl'
    source.write_text('{"messages": []}\n')
    assert run(openai_messages.main, ['--input', str(source), '--out', str(source)]) == 1
    assert 'is the input file' in capsys.readouterr().err and source.read_text() == '{"messages": []}\n'


def test_a_top_level_object_instead_of_a_list(tmp_path: Path, capsys):
    """A file starting with an object is JSON Lines to LLaVA-NeXT's loader (one item per line); a wrapper object
    is then one item without `conversations`, named with its keys."""
    source = tmp_path / 'object.json'
    source.write_text(json.dumps({'data': [{'conversations': []}]}))
    assert run(llava.main, ['--input', str(source), '--out', str(tmp_path / 'x.jsonl')]) == 1
    assert ("no `conversations` (the item's keys: data; LLaVA data is a list of items, or JSON Lines of them)" in
            capsys.readouterr().err)


def test_llava_json_lines_as_llava_next_reads_them(image_dir: Path, tmp_path: Path):
    source = write_jsonl(tmp_path / 'llava.jsonl', [
        {'id': 'a', 'image': 'a.png', 'conversations': [{'from': 'human', 'value': '<image>\nWhat is it?'},
                                                        {'from': 'gpt', 'value': 'A car.'}]}])
    out = tmp_path / 'out.jsonl'
    assert run(llava.main, ['--input', str(source), '--images', str(image_dir), '--out', str(out)]) == 0
    assert _read(out)[0]['images'] == ['images/a.png']


def test_csv_from_a_spreadsheet_bom_crlf_and_latin1(image_dir: Path, tmp_path: Path, capsys):
    excel = tmp_path / 'excel.csv'
    excel.write_bytes('\ufeffimage_path,question,answer\r\nimages/a.png,Colour?,Red\r\n'.encode('utf-8'))
    out = tmp_path / 'excel.jsonl'
    assert run(csv_qa.main, ['--input', str(excel), '--out', str(out)]) == 0
    assert _read(out)[0]['messages'][1] == {'role': 'assistant', 'content': 'Red'}
    latin = tmp_path / 'latin.csv'
    latin.write_bytes('image_path,question,answer\nimages/a.png,Quelle forme ?,Carré\n'.encode('latin-1'))
    assert run(csv_qa.main, ['--input', str(latin), '--out', str(tmp_path / 'l.jsonl')]) == 1
    assert 'not utf-8-sig (byte 0xe9' in capsys.readouterr().err and not (tmp_path / 'l.jsonl').exists()
    assert run(csv_qa.main, ['--input', str(latin), '--out', str(tmp_path / 'l.jsonl'), '--encoding', 'latin-1']) == 0
    assert _read(tmp_path / 'l.jsonl')[0]['messages'][1]['content'] == 'Carré'


def test_csv_saved_as_excel_unicode_text_or_semicolon_separated_says_what_to_do(image_dir: Path, tmp_path: Path,
                                                                                  capsys):
    utf16 = tmp_path / 'unicode.csv'
    utf16.write_bytes('image_path,question,answer\r\nimages/a.png,Colour?,Red\r\n'.encode('utf-16'))
    assert run(csv_qa.main, ['--input', str(utf16), '--out', str(tmp_path / 'u.jsonl')]) == 1
    assert '--encoding utf-16 (the file starts with its byte-order mark)' in capsys.readouterr().err
    assert run(csv_qa.main, ['--input', str(utf16), '--out', str(tmp_path / 'u.jsonl'), '--encoding', 'utf-16']) == 0
    semicolons = tmp_path / 'semi.csv'
    semicolons.write_text('image_path;question;answer\nimages/a.png;Colour?;Red\n')
    assert run(csv_qa.main, ['--input', str(semicolons), '--out', str(tmp_path / 's.jsonl')]) == 1
    assert "(the header is separated by ';': save the file comma-separated" in capsys.readouterr().err


def test_refcoco_wrong_split_and_missing_images_folder(image_dir: Path, tmp_path: Path, capsys):
    refs = tmp_path / 'refs.json'
    refs.write_text(json.dumps([{'ref_id': 1, 'ann_id': 10, 'image_id': 1, 'split': 'train',
                                 'sentences': [{'sent': 'x'}]}]))
    instances = tmp_path / 'instances.json'
    instances.write_text(json.dumps({'images': [], 'annotations': []}))
    args = ['--refs', str(refs), '--instances', str(instances), '--out', str(tmp_path / 'r.jsonl')]
    assert run(refcoco.main, args + ['--images', str(image_dir), '--split', 'val']) == 1
    assert "no refs of split 'val'; the file has train" in capsys.readouterr().err
    assert run(refcoco.main, args + ['--images', str(tmp_path / 'nowhere')]) == 1
    assert f'images folder {tmp_path / "nowhere"} does not exist' in capsys.readouterr().err


def test_csv_rows_whose_fields_disagree_with_the_header_are_skipped_not_cut(image_dir: Path, tmp_path: Path, capsys):
    """An unquoted comma (as a hand-written CSV has it) splits a value: the row is reported, never cut short."""
    source = tmp_path / 'qa.csv'
    source.write_bytes(b'image_path,question,answer\r\nimages/a.png,What color?,Red, with white stripes\r\n'
                       b'images/a.png,Shape?\r\nimages/a.png,Size?,Small\r\n'
                       b'images/a.png,Where is <image>?,Left\r\n')
    out = tmp_path / 'qa.jsonl'
    assert run(csv_qa.main, ['--input', str(source), '--out', str(out)]) == 0
    assert [r['messages'][1]['content'] for r in _read(out)] == ['Small']
    err = capsys.readouterr().err
    assert f'skipped {source}:2: row has 4 fields, the header 3 (a comma inside a value must be quoted' in err
    assert f'skipped {source}:3: row has 2 fields, the header 3' in err
    assert f'skipped {source}:5: `question` holds the text <image>, which training reads as a media placeholder' in err
    assert 'wrote 1 records, skipped 3' in err


def test_csv_columns_beyond_the_three_are_named(image_dir: Path, tmp_path: Path, capsys):
    source = tmp_path / 'qa.csv'
    source.write_text('image_path,question,answer,notes\nimages/a.png,Size?,Small,checked twice\n')
    assert run(csv_qa.main, ['--input', str(source), '--out', str(tmp_path / 'qa.jsonl')]) == 0
    err = capsys.readouterr().err
    assert f'note: {source}: column(s) notes are not converted (a record takes image_path, question, answer)' in err


def _python2_refs_pickle(sentence: bytes, bbox_ref: int = 10) -> bytes:
    """A refs pickle as Python 2 wrote the published files: its strings are byte strings (SHORT_BINSTRING)."""
    def text(value: bytes) -> bytes:
        return b'U' + bytes([len(value)]) + value

    ref = (b'}(' + text(b'ref_id') + b'K\x01' + text(b'ann_id') + b'K' + bytes([bbox_ref]) + text(b'image_id')
           + b'K\x01' + text(b'split') + text(b'val') + text(b'sentences') + b']}(' + text(b'sent') + text(sentence)
           + b'ua' + b'}(' + text(b'sent') + text(b'') + b'ua' + b'u')
    return b'\x80\x02]' + ref + b'a.'


def test_refcoco_python2_pickle_boxes_and_sentences(image_dir: Path, tmp_path: Path, capsys):
    """The published refs(unc).p is a Python 2 pickle with UTF-8 byte strings; a box past the image is clamped and a
    box without area skipped, both counted, like every detection converter's; empty sentences are counted."""
    refs = tmp_path / 'refs.p'
    refs.write_bytes(_python2_refs_pickle('the café sign'.encode()))
    instances = tmp_path / 'instances.json'
    instances.write_text(json.dumps({'images': [{'id': 1, 'file_name': 'b.png', 'width': 96, 'height': 64}],
                                     'annotations': [{'id': 10, 'bbox': [48, 16, 100, 32]},
                                                     {'id': 11, 'bbox': [10, 10, 0, 20]}]}))
    out = tmp_path / 'r.jsonl'
    args = ['--refs', str(refs), '--instances', str(instances), '--images', str(image_dir), '--out', str(out)]
    assert run(refcoco.main, args) == 0
    [record] = _read(out)
    assert json.loads(record['messages'][1]['content']) == [{'desc': 'the café sign', 'bbox_2d': [500, 250, 1000, 750]}]
    err = capsys.readouterr().err
    assert '1  box clamped at the image edge (kept)' in err and '1  empty sentence left out (kept)' in err
    refs.write_bytes(_python2_refs_pickle(b'x', bbox_ref=11))
    assert run(refcoco.main, args) == 1
    assert 'skipped ref 1: degenerate box [10.0, 10.0, 10.0, 30.0]' in capsys.readouterr().err
    refs.write_bytes(_python2_refs_pickle(b'caf\xe9'))  # latin-1, not UTF-8
    assert run(refcoco.main, args) == 1
    assert f'error: {refs}: a string in the pickle is not UTF-8' in capsys.readouterr().err
    refs.write_bytes(_python2_refs_pickle(b'x')[:20])
    assert run(refcoco.main, args) == 1
    assert f'error: {refs}: not a readable refs pickle' in capsys.readouterr().err
