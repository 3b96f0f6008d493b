"""Evidence first in the window: the evidence block shows before the answer streams, a click on
an evidence sentence opens its source scrolled to it and highlighted within its passage, and
each answer sentence that its sources do not support is marked. The window test runs the real
index, embedder and bundled model; the render and compare tests are pure data on real widgets.
"""

from __future__ import annotations

from types import SimpleNamespace

from gui_helpers import ANSWER_TIMEOUT_MS, QUESTION, anchor_point, index_by_drop, small_folder
from PySide6.QtCore import Qt
from PySide6.QtGui import QTextCursor, QTextDocument

from desktop.core.answering.answer import Found
from desktop.core.answering.compare import CompareEvent
from desktop.core.answering.conversations import CheckRecord, EvidenceRecord, SourceRecord, Turn
from desktop.core.answering.sentences import flat
from desktop.gui import render, theme, workers
from desktop.gui.chat_pane import Transcript
from desktop.gui.compare_view import CompareView

COLORS = theme.Colors(text="#000000", muted="#777777", link="#0000ff", mark="#ffff00",
                      strong_mark="#ff9900", question="#eeeeee", error="#ff0000", dark=False)


def background_at(browser, text: str) -> str:
    """The background colour of the middle of the first ``text`` in ``browser``."""
    found = browser.document().find(text)
    assert not found.isNull(), text
    found.setPosition((found.selectionStart() + found.selectionEnd()) // 2,
                      QTextCursor.MoveMode.MoveAnchor)
    return found.charFormat().background().color().name()


def test_the_evidence_shows_first_and_a_click_opens_it_in_its_passage(
        qtbot, make_window, tmp_path):
    window = make_window()
    index_by_drop(qtbot, window, [small_folder(tmp_path / "docs")])
    transcript = window.chat.transcript
    events: list[tuple[str, str]] = []
    # Connected after the window's own slots: each sees the transcript as the window left it.
    window.answers.evidence_found.connect(
        lambda found: events.append(("evidence", transcript.toPlainText())))
    window.answers.token.connect(lambda text: events.append(("token", text)))
    asked: list[list[str]] = []
    ask = window.workspace.ask

    def spy(question, collections, cancel, **options):
        asked.append(list(options.get("history", ())))
        return ask(question, collections, cancel, **options)

    window.workspace.ask = spy
    window.chat.question.setText(QUESTION)
    with qtbot.waitSignal(window.answers.answered, timeout=ANSWER_TIMEOUT_MS) as answered:
        qtbot.keyClick(window.chat.question, Qt.Key.Key_Return)
    answer = answered.args[0]
    assert answer.evidence and "4471-KESTREL" in answer.evidence[0].sentence
    kinds = [kind for kind, _ in events]
    assert kinds[0] == "evidence" and kinds.count("evidence") == 1 and "token" in kinds[1:]
    before_any_token = events[0][1]
    assert "Evidence" in before_any_token and answer.evidence[0].sentence in before_any_token

    turn = transcript.turns[0]
    assert turn.evidence[0].sentence == answer.evidence[0].sentence
    assert [c.text for c in turn.checks] == [s.text for s in answer.sentences]
    shown = transcript.toPlainText()
    assert shown.index("Evidence") < shown.index(answer.evidence[0].sentence) \
        < shown.index("Answer")

    # A real click on the evidence sentence opens its source, scrolled to the sentence.
    found = anchor_point(transcript, "evidence:0:")
    assert found is not None and found[1] == "evidence:0:0"
    qtbot.mouseClick(transcript.viewport(), Qt.MouseButton.LeftButton, pos=found[0])
    panel = window.source_panel
    qtbot.waitUntil(panel.isVisible, timeout=15_000)
    evidence = answer.evidence[0]
    assert panel.source.path == evidence.path and "warehouse.md" in panel.title.text()
    assert panel.sentence == (evidence.start, evidence.end)
    assert flat(panel.source.text[evidence.start:evidence.end]) == evidence.sentence
    # The passage's context arrives from the index; the sentence stays highlighted.
    qtbot.waitUntil(lambda: not any(j.name == "reading the passage" for j in workers._live),
                    timeout=15_000)
    colors = theme.colors(panel.text.palette())
    assert background_at(panel.text, "4471-KESTREL") == colors.strong_mark
    assert background_at(panel.text, "Security") == colors.mark  # the rest of the passage
    assert "name=\"evidence\"" in panel.text.toHtml()

    # A follow-up carries the conversation's earlier questions.
    with qtbot.waitSignal(window.answers.answered, timeout=ANSWER_TIMEOUT_MS):
        window.ask("And what is it for the west warehouse?")
    assert asked == [[], [QUESTION]]


def test_an_unsupported_sentence_is_marked_and_a_supported_one_links_its_evidence():
    source = SourceRecord(1, "/d/garden.txt", "Tomatoes need six hours of direct sunlight.")
    evidence = (EvidenceRecord(1, "Tomatoes need six hours of direct sunlight.", 0, 43,
                               path="/d/garden.txt"),)
    answer = "Tomatoes need six hours of sunlight [1]. They grow best on Mars [1]."
    checks = (CheckRecord("Tomatoes need six hours of sunlight.", True, 0, 1),
              CheckRecord("They grow best on Mars.", False, None, 1))
    turn = Turn("How much sun?", answer, (source,), (1,), evidence=evidence, checks=checks)
    assert render.answer_sentences(answer, [c.text for c in checks]) == [(0, 40), (41, 68)]
    html = render.turn_html(turn, 0, COLORS)
    supported, unsupported = html.split("They grow", 1)
    assert "not in your files" not in supported and "evidence:0:0'" in supported
    assert unsupported.count("not in your files") == 1
    assert unsupported.index("Mars") < unsupported.index("not in your files")
    assert supported.count("text-decoration-color") == 1  # the one that opens "They grow"
    assert f"text-decoration-color:{COLORS.error}'>They grow best on Mars" in html
    # The evidence block leads; the answer's words stand in bold within the sentence.
    assert html.index("Evidence") < html.index(COLORS.mark) < html.index("Answer")
    assert "<b>Tomatoes need six hours</b> of direct sunlight." in html
    assert "Closest evidence" in render.turn_html(
        Turn("q", "I could not find that in your files.", (source,), refused=True,
             evidence=evidence), 0, COLORS)
    old = render.turn_html(Turn("q", answer, (source,), (1,)), 0, COLORS)  # a turn from before
    assert "Evidence" not in old and "not in your files" not in old

    passage = render.passage_html(source, "", "", COLORS, sentence=(14, 23))
    assert (f"<a name='evidence'></a><span style='background-color:{COLORS.strong_mark}'>"
            "six hours</span>") in passage


def laid_out_lines(html: str, width: int) -> list[str]:
    """The lines of ``html`` as Qt lays them out ``width`` pixels wide."""
    document = QTextDocument()
    document.setHtml(html)
    document.setTextWidth(width)
    document.documentLayout().documentSize()  # lays it out
    lines, block = [], document.begin()
    while block.isValid():
        layout = block.layout()
        for i in range(layout.lineCount()):
            line = layout.lineAt(i)
            lines.append(block.text()[line.textStart():line.textStart() + line.textLength()])
        block = block.next()
    return lines


def test_a_source_label_never_wraps_inside_even_in_a_right_to_left_sentence(qtbot):
    # An Arabic evidence sentence: Qt wrapped its label at a hyphen, and the bidirectional
    # order put "xquad-" at the left end of one line and the rest at the right of the next.
    sentence = ("عادةً ما يعمل الصيادلة الاستشاريون في دور رعاية المسنين، ولكنهم يوسعون دائرة "
                "نشاطاتهم بشكل متزايد إلى مؤسسات أخرى وأماكن غير مؤسسية.")
    evidence = (EvidenceRecord(1, sentence, 0, len(sentence), path="/d/xquad-ar-Pharmacy-p013.txt",
                               page=2),)
    html = render.evidence_html(evidence, 0, COLORS)
    for width in range(300, 1000, 20):
        lines = [render.plain_copy(line) for line in laid_out_lines(html, width)]
        assert sum(evidence[0].label() in line for line in lines) == 1, (width, lines)
    assert "xquad-ar-Pharmacy-p013.txt" not in html  # the hyphens are no-break ones
    # A copy from the transcript carries the file's own name.
    transcript = Transcript()
    qtbot.addWidget(transcript)
    transcript.set_turns([Turn("أين يعمل الصيدلي الاستشاري عادة؟", "في دور رعاية المسنين [1].",
                               (SourceRecord(1, evidence[0].path, sentence, page=2),), (1,),
                               evidence=evidence)])
    transcript.selectAll()
    copied = transcript.createMimeDataFromSelection().text()
    assert "[1] xquad-ar-Pharmacy-p013.txt, p. 2" in copied and "\u2011" not in copied


def test_the_compare_view_shows_the_evidence_once_above_its_columns(qtbot):
    view = CompareView()
    qtbot.addWidget(view)
    source = SimpleNamespace(n=1, path="/d/a.md", text="Intro. The code is 12.", page=None,
                             page_end=None, heading=None, chunk_id=3, score=0.5, excerpt=None,
                             label=lambda: "a.md")
    found = SimpleNamespace(n=1, sentence="The code is 12.", path="/d/a.md", page=None,
                            start=7, end=22, score=1.0)

    def answer(text: str, evidence: list) -> SimpleNamespace:
        return SimpleNamespace(question="q", text=text, refused=False, sources=[source],
                               cited=(1,), timings={"total_ms": 5.0}, generation=None,
                               evidence=evidence, sentences=[])

    def event(config: str, kind: str, text: str = "", ans=None, found=None):
        return CompareEvent(config, kind, text, ans, found)

    view.on_event(event("base", "begin"))
    view.on_event(event("base", "token", "Twelve."))
    view.on_event(event("base", "done", ans=answer("Twelve.", [])))
    assert view.evidence_label.isHidden()
    view.on_event(event("retrieval", "begin"))
    # The evidence shows above the columns before the model's first token.
    view.on_event(event("retrieval", "evidence", found=Found([found], [source])))
    assert not view.evidence_label.isHidden()
    assert view.columns["retrieval"].text.toPlainText() == ""
    view.on_event(event("retrieval", "token", "It is 12 [1]."))
    assert view.columns["retrieval"].streamed == "It is 12 [1]."
    view.on_event(event("retrieval", "done", ans=answer("It is 12 [1].", [found])))
    assert "The code is 12." in view.evidence_label.text()
    for column in view.columns.values():
        assert "The code is 12." not in column.text.toPlainText()
    with qtbot.waitSignal(view.evidence_clicked) as clicked:
        view.evidence_label.linkActivated.emit("evidence:0:0")
    assert clicked.args[0].path == "/d/a.md" and clicked.args[1] == (7, 22)
    view.on_event(event("base", "begin"))  # a new question
    assert view.evidence_label.isHidden()
