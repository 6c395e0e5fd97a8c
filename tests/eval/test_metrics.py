"""Dense and summary metrics against hand-computed cases."""
from __future__ import annotations

import numpy as np
import pytest

from src.eval.geometry import LINE_TOLERANCE, similarity_matrix
from src.eval.metrics import THRESHOLDS, match, score_dense, score_summary, summarize_dense, summarize_summary
from src.eval.parse import DenseAnswer, Obj


def box(desc, *coords):
    return Obj(desc, 'bbox_2d', tuple(float(v) for v in coords))


def answer(*objects):
    return DenseAnswer(tuple(objects), True)


def totals(score):
    return score.total.metrics()


def test_perfect_match_scores_one_at_every_threshold():
    gts = [box('car', 0, 0, 10, 10), box('dog', 20, 20, 40, 40)]
    score = score_dense(answer(*gts), gts, 50, 50)
    m = totals(score)
    assert (m['precision@0.5'], m['recall@0.5'], m['f1@0.5'], m['f1@[.5:.95]']) == (1.0, 1.0, 1.0, 1.0)
    assert (score.matched, score.desc_exact, score.desc_normalized) == (2, 2, 2)


def test_a_box_shifted_to_iou_two_thirds_matches_up_to_threshold_065():
    # intersection 8 x 10 = 80, union 120: IoU 0.667, a match at 0.5, 0.55, 0.6, 0.65 and a miss above.
    m = totals(score_dense(answer(box('car', 2, 0, 12, 10)), [box('car', 0, 0, 10, 10)], 20, 20))
    assert m['f1@0.5'] == 1.0
    assert m['precision@[.5:.95]'] == m['recall@[.5:.95]'] == m['f1@[.5:.95]'] == pytest.approx(0.4)


def test_a_box_shifted_to_iou_one_third_is_a_miss_and_a_false_positive():
    m = totals(score_dense(answer(box('car', 5, 0, 15, 10)), [box('car', 0, 0, 10, 10)], 20, 20))
    assert (m['tp@0.5'], m['precision@0.5'], m['recall@0.5'], m['f1@0.5']) == (0, 0.0, 0.0, 0.0)


def test_missing_and_extra_predictions():
    gts = [box('car', 0, 0, 10, 10), box('car', 20, 0, 30, 10), box('car', 40, 0, 50, 10)]
    preds = [gts[0], gts[1], box('car', 0, 40, 10, 50), box('car', 20, 40, 30, 50)]
    m = totals(score_dense(answer(*preds), gts, 60, 60))
    assert (m['tp@0.5'], m['pred'], m['gt']) == (2, 4, 3)
    assert m['precision@0.5'] == 0.5 and m['recall@0.5'] == pytest.approx(2 / 3)
    assert m['f1@0.5'] == pytest.approx(4 / 7)


def test_class_confusion_is_a_false_positive_and_a_false_negative_but_a_localised_pair():
    score = score_dense(answer(box('dog', 0, 0, 10, 10)), [box('car', 0, 0, 10, 10)], 20, 20)
    assert score.per_class['car'].metrics()['recall@0.5'] == 0.0
    assert score.per_class['dog'].metrics()['precision@0.5'] == 0.0
    assert totals(score)['f1@0.5'] == 0.0
    assert (score.matched, score.desc_exact, score.desc_normalized) == (1, 0, 0)


def test_descriptions_are_classes_after_normalisation_but_exact_match_is_reported_apart():
    score = score_dense(answer(box('Traffic  Light ', 0, 0, 10, 10)), [box('traffic light', 0, 0, 10, 10)], 20, 20)
    assert totals(score)['f1@0.5'] == 1.0
    assert (score.matched, score.desc_exact, score.desc_normalized) == (1, 0, 1)


@pytest.mark.parametrize('degenerate', [box('car', 5, 5, 5, 10), box('car', 10, 10, 0, 0), box('car', 3, 3, 3, 3)])
def test_degenerate_predicted_boxes_never_match(degenerate):
    m = totals(score_dense(answer(degenerate), [box('car', 0, 0, 10, 10)], 20, 20))
    assert (m['tp@0.5'], m['pred'], m['gt'], m['f1@0.5']) == (0, 1, 1, 0.0)


def test_empty_predictions():
    no_preds = totals(score_dense(answer(), [box('car', 0, 0, 10, 10)], 20, 20))
    assert (no_preds['precision@0.5'], no_preds['recall@0.5'], no_preds['f1@0.5']) == (0.0, 0.0, 0.0)
    nothing = totals(score_dense(answer(), [], 20, 20))
    assert (nothing['precision@0.5'], nothing['recall@0.5'], nothing['f1@0.5']) == (1.0, 1.0, 1.0)
    hallucinated = totals(score_dense(answer(box('car', 0, 0, 10, 10)), [], 20, 20))
    assert (hallucinated['precision@0.5'], hallucinated['f1@0.5']) == (0.0, 0.0)


def test_a_parse_failure_misses_every_object():
    score = score_dense(DenseAnswer(), [box('car', 0, 0, 10, 10), box('dog', 5, 5, 9, 9)], 20, 20)
    assert not score.parsed and score.score == 0.0
    summary = summarize_dense([score])
    assert summary['parse_failure_rate'] == 1.0 and summary['recall@0.5'] == 0.0 and summary['gt'] == 2


def test_invalid_entries_count_as_false_positives():
    score = score_dense(DenseAnswer((box('car', 0, 0, 10, 10), Obj('car')), True, 1), [box('car', 0, 0, 10, 10)],
                        20, 20)
    m = totals(score)
    assert (m['tp@0.5'], m['pred'], m['precision@0.5']) == (1, 2, 0.5)
    assert summarize_dense([score])['invalid_objects'] == 1


def test_counts_add_up_over_images_as_a_micro_average():
    perfect = score_dense(answer(box('car', 0, 0, 10, 10)), [box('car', 0, 0, 10, 10)], 20, 20)
    missed = score_dense(answer(), [box('car', 0, 0, 10, 10), box('dog', 0, 0, 5, 5)], 20, 20)
    summary = summarize_dense([perfect, missed])
    assert (summary['samples'], summary['tp@0.5'], summary['pred'], summary['gt']) == (2, 1, 1, 3)
    assert summary['precision@0.5'] == 1.0 and summary['recall@0.5'] == pytest.approx(1 / 3)
    assert summary['per_class']['dog']['recall@0.5'] == 0.0 and summary['per_class']['car']['recall@0.5'] == 0.5
    assert summary['desc_exact'] == 1.0 and summary['parse_failure_rate'] == 0.0


def test_polygons_compare_by_mask_iou():
    square = Obj('roof', 'poly', (0, 0, 100, 0, 100, 100, 0, 100))
    shifted = Obj('roof', 'poly', (50, 0, 150, 0, 150, 100, 50, 100))
    sim = similarity_matrix([square, shifted], [square], 200, 200)
    assert sim[0, 0] == 1.0
    assert sim[1, 0] == pytest.approx(1 / 3, abs=0.01)  # 51 x 101 pixels shared of 151 x 101


def test_polylines_compare_by_chamfer_distance_relative_to_the_diagonal():
    line = Obj('lane', 'line', (0, 100, 300, 100))
    parallel = Obj('lane', 'line', (0, 110, 300, 110))  # 10 px away everywhere; diagonal 500, tolerance 25 px
    sim = similarity_matrix([line, parallel], [line], 300, 400)
    assert sim[0, 0] == 1.0
    assert sim[1, 0] == pytest.approx(1 - 10 / (LINE_TOLERANCE * 500))
    m = totals(score_dense(answer(parallel), [line], 300, 400))
    assert m['f1@0.5'] == 1.0 and m['f1@[.5:.95]'] == pytest.approx(0.3)  # matched at 0.5, 0.55, 0.6


def test_different_kinds_never_match():
    square = Obj('a', 'poly', (0, 0, 10, 0, 10, 10, 0, 10))
    sim = similarity_matrix([box('a', 0, 0, 10, 10), Obj('a')], [square], 20, 20)
    assert np.all(sim == 0)


def test_matching_maximises_the_number_of_pairs_over_the_threshold():
    similarity = np.array([[0.9, 0.6], [0.8, 0.0]])  # greedy by best IoU would pair (0, 0) and leave one match
    assert sorted(match(similarity, 0.5)) == [(0, 1), (1, 0)]
    assert match(similarity, 0.95) == [] and len(THRESHOLDS) == 10


def test_summary_rewards_are_the_summary_metrics():
    reference = 'dataset: coco\nobjects: 3\n{"car": 2, "dog": 1}'
    perfect = score_summary(reference, reference)
    rewards = dict(perfect.rewards)
    assert perfect.parsed and rewards.pop('summary_parse') == 0.0  # a gate: 0 when readable, -1 when not
    assert set(rewards.values()) == {1.0}
    garbage = score_summary('<|filler_1|> no summary', reference)
    assert not garbage.parsed and garbage.score == 0.0
    both_irrelevant = score_summary('无关图片', '无关图片')
    assert both_irrelevant.parsed and both_irrelevant.score == 1.0
    summary = summarize_summary([perfect, garbage])
    assert summary['parse_failure_rate'] == 0.5 and summary['summary_format'] == 0.5
    assert summary['summary_parse'] == -0.5 and garbage.rewards['summary_parse'] == -1.0


def test_boxes_polygons_and_lines_are_reported_separately():
    square = Obj('roof', 'poly', (0, 0, 100, 0, 100, 100, 0, 100))
    far_square = Obj('roof', 'poly', (200, 200, 300, 200, 300, 300, 200, 300))
    lane = Obj('lane', 'line', (0, 100, 300, 100))
    answer = DenseAnswer((box('car', 0, 0, 10, 10), far_square, lane), True, 0)
    summary = summarize_dense([score_dense(answer, [box('car', 0, 0, 10, 10), square, lane], 400, 300)])
    geometry = summary['per_geometry']
    assert set(geometry) == {'bbox_2d', 'poly', 'line'}
    assert geometry['bbox_2d']['f1@0.5'] == 1.0 and geometry['line']['f1@0.5'] == 1.0
    assert (geometry['poly']['tp@0.5'], geometry['poly']['pred'], geometry['poly']['gt']) == (0, 1, 1)
    assert summary['tp@0.5'] == sum(g['tp@0.5'] for g in geometry.values()) == 2
