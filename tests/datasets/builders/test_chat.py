"""The record checks: each contract violation is an error naming the file, line and field."""
from pathlib import Path

import pytest

from src.datasets import RecordError, to_template_inputs
from tests.conftest import image_record

WHERE = 'train.jsonl:7'


def test_relative_image_paths_resolve_against_the_jsonl_directory(image_dir: Path):
    inputs = to_template_inputs(image_record('images/a.png'), image_dir.parent, WHERE)
    assert inputs['messages'][0]['content'][0] == {'type': 'image', 'image': str(image_dir / 'a.png')}
    assert inputs['messages'][1] == {'role': 'assistant', 'content': '[{"desc": "car", "bbox_2d": [1, 2, 3, 4]}]'}


def test_missing_image_names_the_record_and_field(image_dir: Path):
    with pytest.raises(RecordError) as err:
        to_template_inputs(image_record('images/missing.png'), image_dir.parent, WHERE)
    assert str(err.value) == (f'train.jsonl:7: messages[0].content[0].image: image file not found: '
                              f'{image_dir}/missing.png')


def test_placeholder_count_must_match_listed_images(image_dir: Path):
    record = {
        'messages': [{'role': 'user', 'content': '<image><image>Compare.'}, {'role': 'assistant', 'content': 'x'}],
        'images': ['images/a.png'],
    }
    with pytest.raises(RecordError, match=r'train.jsonl:7: the text has 2 <image> placeholder\(s\) but the record '
                       r'lists 1 image\(s\)'):
        to_template_inputs(record, image_dir.parent, WHERE)


def test_placeholder_form_with_matching_images_is_accepted(image_dir: Path):
    record = {
        'messages': [{'role': 'user', 'content': '<image>Describe.'}, {'role': 'assistant', 'content': 'x'}],
        'images': ['images/a.png'],
    }
    assert to_template_inputs(record, image_dir.parent, WHERE)['images'] == [str(image_dir / 'a.png')]


def test_a_literal_placeholder_beside_image_items_says_to_remove_it(image_dir: Path):
    record = image_record('images/a.png')
    record['messages'][0]['content'][1]['text'] = '<image> Describe.'
    with pytest.raises(RecordError, match=r'train.jsonl:7: the text holds 1 literal <image>, which training reads as '
                                          r'a placeholder for `images`, while the images are content items \(which '
                                          r'stand where they are\); remove <image> from the text'):
        to_template_inputs(record, image_dir.parent, WHERE)


def test_a_system_message_after_the_first_is_refused(image_dir: Path):
    record = {'messages': [{'role': 'system', 'content': 'Be brief.'}, {'role': 'system', 'content': 'Be exact.'},
                           {'role': 'user', 'content': 'Hi'}, {'role': 'assistant', 'content': 'Hello'}]}
    with pytest.raises(RecordError, match=r'train.jsonl:7: messages\[1\]: a system message can only be the first '
                                          r'message \(the template takes one system prompt, before the conversation\); '
                                          r'merge its text into the first, or leave it out'):
        to_template_inputs(record, image_dir.parent, WHERE)


def test_hand_written_vision_tokens_are_rejected(image_dir: Path):
    record = image_record('images/a.png')
    record['messages'][0]['content'][1]['text'] = '<|vision_start|><|image_pad|><|vision_end|>'
    with pytest.raises(RecordError, match=r'messages\[0\].content\[1\].text: contains <\|vision_start\|>, a control '
                                          'token of the chat template'):
        to_template_inputs(record, image_dir.parent, WHERE)


@pytest.mark.parametrize('record,message', [
    ([1, 2], 'a record must be a JSON object'),
    ({'messages': []}, '`messages` must be a non-empty list'),
    ({'messages': [{'role': 'bot', 'content': 'x'}]}, r'messages\[0\]: needs a `role`'),
    ({'messages': [{'role': 'user', 'content': 'x'}]}, 'the last message must be the assistant answer'),
    ({'messages': [{'role': 'user', 'content': [{'type': 'audio'}]}, {'role': 'assistant', 'content': 'x'}]},
     r'messages\[0\].content\[0\]: `type` must be "text", "image", "image_url" or "video"'),
])
def test_malformed_records(tmp_path: Path, record, message: str):
    with pytest.raises(RecordError, match=f'^train.jsonl:7: {message}'):
        to_template_inputs(record, tmp_path, WHERE)


def test_video_items_and_placeholders(tmp_path: Path):
    (tmp_path / 'clip.mp4').write_bytes(b'\x00')
    record = {'messages': [{'role': 'user', 'content': [{'type': 'video', 'video': 'clip.mp4'},
                                                        {'type': 'text', 'text': 'What happens?'}]},
                           {'role': 'assistant', 'content': 'x'}]}
    inputs = to_template_inputs(record, tmp_path, WHERE)
    assert inputs['messages'][0]['content'][0] == {'type': 'video', 'video': str(tmp_path / 'clip.mp4')}
    placeholder_form = {'messages': [{'role': 'user', 'content': '<video>Hi'}, {'role': 'assistant', 'content': 'x'}],
                        'videos': ['clip.mp4', 'clip.mp4']}
    with pytest.raises(RecordError, match=r'has 1 <video> placeholder\(s\) but the record lists 2 video\(s\)'):
        to_template_inputs(placeholder_form, tmp_path, WHERE)


def test_swift_rows_put_placeholders_where_the_items_were():
    from src.datasets.builders.chat import to_swift_row

    inputs = {'messages': [
        {'role': 'system', 'content': 'Be brief.'},
        {'role': 'user', 'content': [{'type': 'text', 'text': 'Compare '}, {'type': 'image', 'image': '/d/a.png'},
                                     {'type': 'text', 'text': ' and '}, {'type': 'image', 'image': '/d/b.png'},
                                     {'type': 'video', 'video': '/d/c.mp4'}]},
        {'role': 'assistant', 'content': 'Same.'}]}
    assert to_swift_row(inputs) == {
        'messages': [{'role': 'system', 'content': 'Be brief.'},
                     {'role': 'user', 'content': 'Compare <image> and <image><video>'},
                     {'role': 'assistant', 'content': 'Same.'}],
        'images': ['/d/a.png', '/d/b.png'], 'videos': ['/d/c.mp4']}
    placeholder_form = {'messages': [{'role': 'user', 'content': '<image>Hi'}, {'role': 'assistant', 'content': 'x'}],
                        'images': ['/d/a.png']}
    assert to_swift_row(placeholder_form) == placeholder_form
