"""The sentence check: each answer sentence against the source sentence that supports it."""

from __future__ import annotations

from desktop.core.answering.support import check, facts

SOURCES = {
    1: ("The American Football Conference champion Denver Broncos defeated the National "
        "Football Conference champion Carolina Panthers 24–10. The game was played on "
        "February 7, 2016, at Levi's Stadium."),
    2: "Tomatoes need sun. Water them at dawn.",
}


def test_copied_and_shortened_sentences_are_supported_and_point_at_their_sentence():
    (copied,) = check("The game was played on February 7, 2016, at Levi's Stadium [1].", SOURCES)
    assert copied.supported and copied.source == 1 and copied.score == 1.0
    assert SOURCES[1][copied.start:copied.end].startswith("The game was played")
    (phrase,) = check("Denver Broncos [1]", SOURCES)
    assert phrase.supported and phrase.source == 1


def test_a_changed_number_date_or_name_is_unsupported():
    for changed in ("The game was played on February 9, 2016, at Levi's Stadium.",
                    "The game was played on February 7, 2015, at Levi's Stadium.",
                    "The Denver Broncos defeated the Seattle Panthers 24–10.",
                    "The Denver Broncos defeated the Carolina Panthers 24–17."):
        (result,) = check(changed, SOURCES)
        assert not result.supported, changed
        assert result.source == 1 and result.score >= 0.6  # close, yet a fact differs


def test_each_sentence_is_checked_on_its_own():
    results = check("Tomatoes need sun [2]. Paris is the capital of France.", SOURCES)
    assert [(r.text, r.supported, r.source) for r in results] == [
        ("Tomatoes need sun.", True, 2), ("Paris is the capital of France.", False, None)]


def test_facts_are_numbers_and_names_inside_a_sentence():
    assert facts("The Broncos won 24–10 on February 7, 2016.") == {
        "broncos", "24", "10", "february", "7", "2016"}
    assert facts("They won.") == set()


def test_a_number_touching_chinese_letters_is_a_fact_of_its_own():
    # "1785年": no space between the year and 年. The window marked the quoted answer "1785"
    # "(not in your files)" beside the very sentence it was quoted from.
    source = {1: "詹姆斯·赫顿 通常被视为第一位现代地质学家。1785年，他向爱丁堡皇家学会提交了一篇"
                 "题为 地球理论 的论文。"}
    assert [r.supported for r in check("1785 [1]", source)] == [True]
    assert [r.supported for r in check("1785年 [1]", source)] == [True]
    assert [r.supported for r in check("1786 [1]", source)] == [False]
    changed = "1786年，他向爱丁堡皇家学会提交了论文 [1]"
    assert [r.supported for r in check(changed, source)] == [False]
    assert facts("1785年，他") == {"1785"}
    glued = "此后又应用了 Eutelsat的 Eurobird 1 卫星。"  # a name touching 的
    assert facts(glued) == {"eutelsat", "eurobird", "1"}
    assert [r.supported for r in check(glued, {1: glued})] == [True]


def test_the_constructed_set_changes_exactly_one_fact():
    import random

    from desktop.core.evaluation.evidence_measures import change_one_fact

    sentence = "The Broncos beat the Panthers 24–10 in 2016."
    rng = random.Random(0)
    assert change_one_fact(sentence, [], rng, prefer_number=True) == \
        "The Broncos beat the Panthers 25–10 in 2016."
    swapped = change_one_fact(sentence, ["Seahawks", "Panthers"], rng, prefer_number=False)
    assert swapped == "The Seahawks beat the Panthers 24–10 in 2016."
    assert change_one_fact("they won it all.", ["Seahawks"], rng, prefer_number=True) is None


def test_a_number_in_words_is_a_fact_and_a_changed_one_is_unsupported():
    notice = {1: "From 1 February the reading room closes at 6 pm on Saturdays. The map "
                 "collection moves to the second floor. Three rooms stay open."}
    (moved,) = check("The map collection moves to the third floor. [1]", notice)
    assert not moved.supported and moved.source == 1
    (kept,) = check("The map collection moves to the second floor. [1]", notice)
    assert kept.supported
    assert not check("Two rooms stay open.", notice)[0].supported
    assert facts("The one on the second floor has twenty seats.") == {"second", "twenty"}
