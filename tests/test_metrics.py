"""The eval's scores: SQuAD normalisation, EM/F1 (mixed segmentation), ranking metrics."""

from __future__ import annotations

import pytest

from desktop.core.evaluation.metrics import exact_match, f1_score


def test_squad_normalisation_ignores_case_punctuation_and_articles():
    assert exact_match("The Denver Broncos.", ["denver broncos"]) == 1.0
    assert exact_match("Broncos", ["Denver Broncos"]) == 0.0
    assert f1_score("the Denver Broncos won", ["Denver Broncos"]) == pytest.approx(0.8)
    assert f1_score("", ["Denver"]) == 0.0


def test_unspaced_scripts_score_character_by_character():
    # A partly right Chinese answer earns partial credit, as in MLQA's mixed segmentation.
    assert f1_score("首都北京", ["北京"]) == pytest.approx(2 / 3)
    assert f1_score("北京 in 2020", ["北京 2020"]) == pytest.approx(6 / 7)
    assert f1_score("กรุงเทพ", ["กรุงเทพมหานคร"]) > 0.6
