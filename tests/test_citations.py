from desktop.core.answering.citations import check_citations


def test_valid_citations_are_kept_in_order():
    c = check_citations("Rent is due monthly [2]. Notice is 90 days [1][2].", 3)
    assert c.cited == (2, 1) and c.invalid == 0
    assert c.text == "Rent is due monthly [2]. Notice is 90 days [1][2]."


def test_invented_citations_are_removed_and_counted():
    c = check_citations("It is blue [7]. It is red [1, 9].", 2)
    assert c.text == "It is blue. It is red [1]."
    assert c.cited == (1,) and c.invalid == 2


def test_no_sources_means_every_mark_is_invalid():
    c = check_citations("Paris [1].", 0)
    assert c.text == "Paris." and c.cited == () and c.invalid == 1


def test_text_without_marks_is_untouched():
    assert check_citations("Just words, [not a cite].", 3).text == "Just words, [not a cite]."


def test_an_answer_resting_on_a_source_cites_it():
    from desktop.core.answering.answer import cite_support
    from desktop.core.answering.support import check

    sources = {1: "Tomatoes need sun.", 2: "The code is 4471-KESTREL."}
    sentences = check("The code is 4471-KESTREL.", sources)
    assert cite_support("The code is 4471-KESTREL.", (), sentences) == (
        "The code is 4471-KESTREL. [2]", (2,))
    assert cite_support("It is [1].", (1,), sentences) == ("It is [1].", (1,))
    unsupported = check("Paris is big.", sources)
    assert cite_support("Paris is big.", (), unsupported) == ("Paris is big.", ())
