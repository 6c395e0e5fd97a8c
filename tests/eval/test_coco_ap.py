"""COCO box AP: a case computed by hand, and the same inputs through pycocotools the way its own users call it
(annotation and result files on disk, ``COCOeval.summarize``)."""
from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from src.eval.coco_ap import ImageBoxes, box_ap
from src.eval.metrics import score_dense, summarize_dense
from src.eval.parse import DenseAnswer, Obj


def test_one_right_box_and_one_wrong_is_51_of_101_recall_points():
    """Two cars, two boxes: the first on a car, the second on nothing. With equal scores the curve is precision 1
    up to recall 0.5, then nothing more is found: 51 of COCO's 101 recall points have precision 1."""
    image = ImageBoxes(predicted=(('car', (0, 0, 10, 10)), ('car', (50, 50, 60, 60))),
                       truth=(('car', (0, 0, 10, 10)), ('car', (20, 20, 30, 30))))
    ap = box_ap([image])
    assert ap['AP50'] == pytest.approx(51 / 101) and ap['AP75'] == pytest.approx(51 / 101)
    assert ap['AP@[.5:.95]'] == pytest.approx(51 / 101) and ap['per_class'] == {'car': pytest.approx(51 / 101)}


def test_the_order_the_model_wrote_the_boxes_decides_ties():
    """The same boxes, the wrong one first: precision 0.5 at recall 0.5, so 51 recall points at 0.5."""
    image = ImageBoxes(predicted=(('car', (50, 50, 60, 60)), ('car', (0, 0, 10, 10))),
                       truth=(('car', (0, 0, 10, 10)), ('car', (20, 20, 30, 30))))
    assert box_ap([image])['AP50'] == pytest.approx(0.5 * 51 / 101)


def test_no_boxes_in_the_truth_means_no_ap_and_nothing_predicted_means_zero():
    assert box_ap([ImageBoxes(predicted=(('car', (0, 0, 5, 5)),))]) is None
    assert box_ap([ImageBoxes(truth=(('car', (0, 0, 5, 5)),))])['AP@[.5:.95]'] == 0.0


IMAGES = [
    ImageBoxes(predicted=(('car', (10, 10, 50, 40)), ('person', (60, 5, 80, 60)), ('car', (0, 0, 8, 8))),
               truth=(('car', (12, 11, 52, 42)), ('person', (61, 4, 79, 58)), ('car', (90, 90, 99, 99)))),
    ImageBoxes(predicted=(('person', (5, 5, 30, 90)), ('dog', (40, 40, 70, 70))),
               truth=(('person', (4, 8, 28, 88)), ('dog', (45, 42, 72, 75)), ('dog', (0, 60, 20, 80)))),
    ImageBoxes(predicted=(), truth=(('car', (1, 1, 30, 20)),)),
]


def test_equal_to_pycocotools_called_as_its_users_call_it(tmp_path: Path):
    names = ['car', 'dog', 'person']
    gt = {'images': [{'id': i + 1, 'width': 100, 'height': 100, 'file_name': f'{i}.jpg'} for i in range(3)],
          'categories': [{'id': 10 * (k + 1), 'name': name} for k, name in enumerate(names)], 'annotations': []}
    results = []
    for i, image in enumerate(IMAGES):
        for name, (x1, y1, x2, y2) in image.truth:
            gt['annotations'].append({'id': len(gt['annotations']) + 7, 'image_id': i + 1, 'iscrowd': 0,
                                      'category_id': 10 * (names.index(name) + 1), 'bbox': [x1, y1, x2 - x1, y2 - y1],
                                      'area': (x2 - x1) * (y2 - y1)})
        for name, (x1, y1, x2, y2) in image.predicted:
            results.append({'image_id': i + 1, 'category_id': 10 * (names.index(name) + 1),
                            'bbox': [x1, y1, x2 - x1, y2 - y1], 'score': 1.0})
    (tmp_path / 'gt.json').write_text(json.dumps(gt))
    (tmp_path / 'results.json').write_text(json.dumps(results))
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / 'gt.json'))
        evaluation = COCOeval(coco, coco.loadRes(str(tmp_path / 'results.json')), 'bbox')
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    ap = box_ap(IMAGES)
    assert [ap['AP@[.5:.95]'], ap['AP50'], ap['AP75']] == pytest.approx(list(evaluation.stats[:3]))


def test_eval_report_carries_ap_overall_and_per_class():
    answer = DenseAnswer((Obj('Car', 'bbox_2d', (0, 0, 10, 10)), Obj('lane', 'line', (0, 0, 5, 5))), True)
    truth = [Obj('car', 'bbox_2d', (0, 0, 10, 10)), Obj('lane', 'line', (0, 0, 5, 5))]
    summary = summarize_dense([score_dense(answer, truth, 20, 20)])
    assert [summary['AP@[.5:.95]'], summary['AP50'], summary['AP75']] == pytest.approx([1.0, 1.0, 1.0])
    assert summary['per_class']['car']['AP@[.5:.95]'] == pytest.approx(1.0)
    assert summary['per_class']['lane']['AP@[.5:.95]'] is None  # lines are scored by F1 alone
