"""A static ``index.html`` that lists pictures with their scores, worst first; no scripts, opens from disk."""
from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class GalleryItem:
    picture: str
    """Path of the PNG, relative to the gallery's folder."""
    title: str
    score: float | None
    details: dict[str, str]
    text: str = ''
    """Shown folded under the picture (the raw prediction)."""


STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
table { border-collapse: collapse; }
td, th { border: 1px solid #ccc; padding: 6px; vertical-align: top; text-align: left; }
img { max-width: 900px; }
pre { white-space: pre-wrap; max-width: 900px; max-height: 16em; overflow: auto; background: #f6f6f6; }
.legend span { padding: 2px 6px; color: white; margin-right: 6px; }
"""


def write_gallery(folder: Path, items: list[GalleryItem], heading: str, legend: dict[str, str]) -> Path:
    """Write ``folder/index.html`` with the items sorted by score, lowest first (items without a score last; no
    score column when no item has one)."""
    ordered = sorted(items, key=lambda item: (item.score is None, item.score or 0.0))
    scored = any(item.score is not None for item in items)
    rows = []
    for rank, item in enumerate(ordered, 1):
        score = ('<td>-</td>' if item.score is None else f'<td>{item.score:.3f}</td>') if scored else ''
        details = ''.join(f'<div>{html.escape(k)}: {html.escape(v)}</div>' for k, v in item.details.items())
        text = (f'<details><summary>prediction</summary><pre>{html.escape(item.text)}</pre></details>'
                if item.text else '')
        rows.append(f'<tr><td>{rank}</td>{score}<td><b>{html.escape(item.title)}</b>{details}</td>'
                    f'<td><a href="{html.escape(item.picture)}"><img src="{html.escape(item.picture)}" '
                    f'alt="{html.escape(item.title)}"></a>{text}</td></tr>')
    legend_html = ''.join(f'<span style="background: {colour}">{html.escape(name)}</span>'
                          for name, colour in legend.items())
    page = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<link rel="icon" href="data:,">
<title>{html.escape(heading)}</title>
<style>{STYLE}</style>
</head>
<body>
<h1>{html.escape(heading)}</h1>
<p class="legend">{legend_html}</p>
<table>
<thead><tr><th>#</th>{'<th>score</th>' if scored else ''}<th>sample</th><th>picture</th></tr></thead>
<tbody>
{chr(10).join(rows)}
</tbody>
</table>
</body>
</html>
"""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / 'index.html'
    path.write_text(page, encoding='utf-8')
    return path
