"""Text that a record or a prompt may not contain, because the chat template or ms-swift would read it as markup.

- The chat template's control tokens, ``<|im_start|>``, ``<|im_end|>``, ``<|endoftext|>``, ``<|image_pad|>``,
  ``<|box_start|>``, ... (every Qwen special token is spelt ``<|name|>``): the tokenizer turns the written text into
  the token itself, so an answer containing ``<|im_end|>`` ends its turn early and one containing ``<|image_pad|>``
  no longer matches its image.
- ms-swift's placeholders, ``<image>``, ``<video>``, ``<audio>``, ``<ref-object>``, ``<bbox>``: its template fills each
  from the record's media or `objects` lists. Chat records in ms-swift's own form use them on purpose (and are
  checked one to one against those lists); anywhere else (an object's `desc`, a summary, a prompt) they would pull in
  a media file or an object that is not there.
"""
from __future__ import annotations

import re

CONTROL_TOKEN = re.compile(r'<\|[A-Za-z0-9_]+\|>')
SWIFT_PLACEHOLDERS = ('<image>', '<video>', '<audio>', '<ref-object>', '<bbox>')


def control_token_problem(text: str) -> str | None:
    """Why ``text`` may not reach the tokenizer as written (a control token), or None."""
    found = CONTROL_TOKEN.search(text)
    if found is None:
        return None
    return (f'contains {found.group()}, a control token of the chat template: the tokenizer would read it as the '
            'token itself, not as text; remove it (images are given as image items, never as vision tokens)')


def reserved_text_problem(text: str) -> str | None:
    """Why free text (a `desc`, a summary, a prompt) may not be used as written, or None."""
    if (problem := control_token_problem(text)) is not None:
        return problem
    placeholder = next((p for p in SWIFT_PLACEHOLDERS if p in text), None)
    if placeholder is not None:
        return (f'contains {placeholder}, a placeholder that ms-swift\'s template fills from the record\'s media or '
                '`objects`; in this field it would pull in something that is not there. Remove it')
    return None
