"""Evidence: the sentences of the passages that share the question's rarest words, and where
they lie."""

from __future__ import annotations

from desktop.core.answering.evidence import excerpts, rank
from desktop.core.answering.sentences import sentence_spans, sentences

LEASE = ("This lease starts on 1 May. The tenant pays rent monthly. Either party may end the "
         "lease with ninety days' written notice. Pets are allowed.")
GARDEN = "Tomatoes need sun.\nWater them at dawn. Notice the leaves turning yellow in autumn."


def test_sentences_split_at_stops_and_line_breaks_in_any_script():
    assert sentences(GARDEN) == ["Tomatoes need sun.", "Water them at dawn.",
                                 "Notice the leaves turning yellow in autumn."]
    assert sentences("東京は首都です。大阪は都市です。") == ["東京は首都です。", "大阪は都市です。"]
    assert sentences("दिल्ली राजधानी है। मुंबई बड़ा शहर है।") == ["दिल्ली राजधानी है।",
                                                              "मुंबई बड़ा शहर है।"]
    assert sentences("ما هي العاصمة؟ القاهرة هي العاصمة.") == ["ما هي العاصمة؟",
                                                              "القاهرة هي العاصمة."]
    assert sentences("  \n\n ") == []
    assert sentences("## Status\nEvery file\n\nScanned PDFs") == ["## Status", "Every file",
                                                                   "Scanned PDFs"]


def test_an_initial_or_a_lower_case_word_after_a_stop_does_not_end_a_sentence():
    assert sentences("The hymn is sung in the translation by John C. Messenger. It is old.") \
        == ["The hymn is sung in the translation by John C. Messenger.", "It is old."]
    assert sentences("The U.S. Army won, e.g. at sea. Then it rained.") == [
        "The U.S. Army won, e.g. at sea.", "Then it rained."]
    assert sentences("Первыми были Дж. А. Гобсон и Mr. Smith. Это важно. It is in the US. Yes.") \
        == ["Первыми были Дж. А. Гобсон и Mr. Smith.", "Это важно.", "It is in the US.", "Yes."]
    assert sentences("Акт ЮАР о школах от 1996 г. признал два типа школ. Это важно.") == [
        "Акт ЮАР о школах от 1996 г. признал два типа школ.", "Это важно."]
    assert sentences("Ein Motor mit ca. drei Zylindern. Er läuft.") == [
        "Ein Motor mit ca. drei Zylindern.", "Er läuft."]
    # "No." is a reply unless a number follows it.
    assert sentences("No. Press Ctrl-C once. See No. 5 on the list (Protocol No. SPH-12).") \
        == ["No.", "Press Ctrl-C once.", "See No. 5 on the list (Protocol No. SPH-12)."]
    # A blank line still ends one, whatever follows it.
    assert sentences("It ended.\n\nthen a new paragraph") == ["It ended.", "then a new paragraph"]
    # The price, as in Punkt: a sentence that ends with a lone letter runs on into the next.
    assert sentences("We used vitamin D. The rest was water.") == [
        "We used vitamin D. The rest was water."]


def test_hard_wrapped_prose_stays_one_sentence():
    wrapped = ("Scanned PDFs are marked as needing OCR, with\nthe pages named. Encrypted PDFs "
               "are\nmarked as needing a password.\nlowercase after a stop starts anew")
    assert sentences(wrapped) == ["Scanned PDFs are marked as needing OCR, with the pages named.",
                                  "Encrypted PDFs are marked as needing a password.",
                                  "lowercase after a stop starts anew"]
    assert sentences("- one item\n- two item\n• three") == ["- one item", "- two item",
                                                            "• three"]
    faq = ("Where is my data stored?\nIn the data folder that platformdirs chooses for your "
           "system, for example\n~/.local/share/Grounded on Linux.")
    assert sentences(faq) == ["Where is my data stored?", faq[25:].replace("\n", " ")]


def test_the_rarest_shared_words_win_and_a_weak_match_is_left_out():
    kept = excerpts("What notice must be given to end the lease?", [GARDEN, LEASE], keep=2)
    # Three sentences share a word; the one with "end" (rare), "lease" and "notice" ranks first;
    # the next shares only "notice", under half its score: not evidence.
    assert [(e.passage, e.text) for e in kept] == [
        (1, "Either party may end the lease with ninety days' written notice.")]


def test_excerpts_are_grouped_by_passage_in_rank_order():
    kept = excerpts("When should tomatoes be watered, and may pets stay?", [LEASE, GARDEN], keep=3)
    assert [e.passage for e in kept] == [0, 1]
    assert kept[0].text == "Pets are allowed."  # three sentences share a word: no filler
    # "watered" meets "Water" by its stem.
    assert kept[1].text == "Tomatoes need sun. Water them at dawn."


def test_with_no_shared_word_the_best_passage_speaks_first():
    kept = excerpts("Qu'en pensez-vous ?", [LEASE, GARDEN], keep=2)
    assert [(e.passage, e.text) for e in kept] == [
        (0, "This lease starts on 1 May. The tenant pays rent monthly.")]


def test_keep_zero_keeps_every_passage_whole():
    assert [(e.passage, e.text) for e in excerpts("anything", [LEASE, GARDEN], 0)] == [
        (0, LEASE), (1, GARDEN)]


def test_chinese_questions_match_by_bigrams():
    zh = "北京是中国的首都。上海是最大的城市。"
    kept = excerpts("中国的首都是哪里？", [zh], keep=1)
    assert kept[0].text == "北京是中国的首都。"


def test_the_source_panel_bolds_what_the_model_read_across_wrapped_lines():
    from desktop.core.answering.conversations import SourceRecord
    from desktop.gui.render import passage_html, read_spans
    from desktop.gui.theme import Colors

    text = ("Every file gets a status. Scanned PDFs are marked as needing OCR, with\n"
            "the pages named. Encrypted PDFs are marked as needing a password.")
    excerpt = excerpts("What happens to scanned PDFs?", [text], keep=1)[0].text
    assert excerpt == "Scanned PDFs are marked as needing OCR, with the pages named."
    (start, end), = read_spans(text, excerpt)
    assert text[start:end] == "Scanned PDFs are marked as needing OCR, with\nthe pages named."
    assert read_spans(text, "Not in the passage.") == []
    fields = {f: "#000000" for f in Colors.__dataclass_fields__}
    html = passage_html(SourceRecord(n=1, path="/a.md", text=text, excerpt=excerpt), "", "",
                        Colors(**fields))
    assert "<b>Scanned PDFs are marked as needing OCR, with<br>the pages named.</b>" in html
    assert html.count("<b>") == 1


def test_rank_gives_each_sentence_its_place_in_the_passage_best_first():
    passages = [GARDEN, LEASE]
    ranked = rank("What notice must be given to end the lease?", passages)
    assert [s.text for s in ranked] == [
        "Either party may end the lease with ninety days' written notice.",
        "Notice the leaves turning yellow in autumn.", "This lease starts on 1 May."]
    for s in ranked:
        assert passages[s.passage][s.start:s.end] == s.text
    assert 0 < ranked[-1].score < ranked[0].score <= 1
    assert rank("Qu'en pensez-vous ?", passages) == []


def test_a_better_ranked_passage_wins_a_near_tie():
    first = "The tenant pays rent to the agent."
    second = "The tenant pays rent monthly by transfer."
    ranked = rank("How does the tenant pay rent?", [first, second])
    assert [s.passage for s in ranked] == [0, 1]


def test_inflected_words_meet_by_their_stem_in_any_spaced_script():
    ru = "Столица России находится в Москве. Петербург стоит на Неве."
    ranked = rank("Что находится в Москва?", [ru])
    assert ranked[0].text == "Столица России находится в Москве."
    de = "Die Zellen teilen sich schnell. Der Baum ist alt."
    assert rank("Wie teilt sich eine Zelle?", [de])[0].text == "Die Zellen teilen sich schnell."


def test_spans_keep_a_wrapped_sentence_whole_with_its_offsets():
    text = "Intro line here.\nScanned PDFs are marked as needing OCR, with\nthe pages named. End."
    spans = sentence_spans(text)
    assert [text[s:e] for s, e in spans] == [
        "Intro line here.", "Scanned PDFs are marked as needing OCR, with\nthe pages named.",
        "End."]


def test_a_sentence_far_weaker_than_the_best_is_not_evidence():
    from desktop.core.answering.evidence import best

    passages = ["The access code for the east warehouse is 4471-KESTREL.",
                "Each passage is stored with its code."]
    ranked = rank("What is the access code for the east warehouse?", passages)
    assert len(ranked) == 2 and ranked[1].score < 0.5 * ranked[0].score
    assert [s.passage for s in best("What is the access code for the east warehouse?",
                                    passages, 2)] == [0]


def test_a_heading_that_only_restates_the_question_yields_to_the_sentence_that_answers():
    passage = ("The Proposed Amendment\nAccordingly, the FAA proposes to amend 14 CFR part 39 "
               "as follows.")
    ranked = rank("What does the proposed rule amend?", [passage])
    assert ranked[0].text.startswith("Accordingly, the FAA proposes to amend 14 CFR part 39")
    heading = next(s for s in ranked if s.text == "The Proposed Amendment")
    # Halved, not dropped: a yes/no question's answer can be its own restatement.
    assert rank("Is coinfection common?", ["Coinfection is common."])[0].score > 0
    assert 0 < heading.score < ranked[0].score


def test_an_faq_answer_is_the_evidence_for_its_question_though_it_shares_no_word():
    from pathlib import Path

    faq = (Path(__file__).resolve().parents[1] / "resources" / "samples" / "faq.txt").read_text()
    ranked = rank("Can I stop indexing halfway?", [faq])
    assert [s.text for s in ranked[:2]] == [
        "Yes.", "Press Ctrl-C once: Grounded finishes the batch it is writing and stops."]
    assert ranked[0].score == 1.0 and faq[ranked[1].start:ranked[1].end].startswith("Press")
    assert rank("Which embedding model is used?", [faq])[0].text.startswith(
        "The bundled all-MiniLM-L6-v2")
    # Its question asks more than this one: the answer counts only as far as they agree.
    changed = rank("What happens if I change the model?", [faq])
    assert changed[0].text.startswith("Changing the model means re-embedding")
    # A question inside a paragraph heads nothing: the prose after it need not answer it.
    prose = "We asked a hard question. Can the index stop halfway? Rain fell all night."
    assert [s.text for s in rank("Can the index stop halfway?", [prose])] == []
    # The answer ends at the blank line after it, or at the next question.
    two = "How do I stop?\nPress Ctrl-C.\n\nWhat does it cost?\nNothing."
    assert [s.text for s in rank("How do I stop?", [two])] == ["Press Ctrl-C."]
    assert [s.text for s in rank("How do I stop?", ["How do I stop?\nPress Ctrl-C.\n"
                                                    "Why bother?\nTo save power."])] == [
        "Press Ctrl-C."]
