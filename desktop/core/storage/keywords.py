"""Text for the FTS5 keyword index, safe FTS5 queries from user text, and where sentences end
(shared by the chunker and the evidence sentences).

FTS5's unicode61 tokenizer splits on spaces and punctuation, which leaves Chinese, Japanese
and Thai (written without spaces) as one huge token per phrase. We index such runs as
overlapping character bigrams, the classic CJK approach (Lucene's CJKAnalyzer): no
dictionary needed, and a question's bigrams match the passage's bigrams. The tokenizer keeps
combining marks (category M) inside tokens, so Thai vowels and Devanagari signs stay in words.
"""

from __future__ import annotations

import re
from collections.abc import Collection

#: Scripts written without spaces between words: Thai, Lao, Myanmar, Khmer, kana, CJK ideographs.
UNSPACED = (
    "\u0e00-\u0e7f\u0e80-\u0eff\u1000-\u109f\u1780-\u17ff"
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
)
#: Unicode's Sentence_Terminal characters, for a regular expression's character class: . ! ?
#: and every script's own (the Devanagari danda, the Arabic question mark and full stop, the
#: Armenian, Ethiopic, Myanmar and Khmer stops, the ideographic full stop...). The standard
#: library's re cannot name a Unicode property; tests check this list against the regex
#: module's Unicode database.
SENTENCE_TERMINALS = (
    "!.?\u0589\u061d-\u061f\u06d4\u0700-\u0702\u07f9\u0837\u0839\u083d-\u083e"
    "\u0964-\u0965\u104a-\u104b\u1362\u1367-\u1368\u166e\u1735-\u1736\u17d4-\u17d5\u1803"
    "\u1809\u1944-\u1945\u1aa8-\u1aab\u1b4e-\u1b4f\u1b5a-\u1b5b\u1b5e-\u1b5f\u1b7d-\u1b7f"
    "\u1c3b-\u1c3c\u1c7e-\u1c7f\u2024\u203c-\u203d\u2047-\u2049\u2cf9-\u2cfb\u2e2e\u2e3c"
    "\u2e53-\u2e54\u2e60-\u2e61\u3002\ua4ff\ua60e-\ua60f\ua6f3\ua6f7\ua876-\ua877"
    "\ua8ce-\ua8cf\ua92f\ua9c8-\ua9c9\uaa5d-\uaa5f\uaaf0-\uaaf1\uabeb\ufe12\ufe15-\ufe16"
    "\ufe52\ufe56-\ufe57\uff01\uff0e\uff1f\uff61\U00010a56-\U00010a57"
    "\U00010f55-\U00010f59\U00010f86-\U00010f89\U00011047-\U00011048\U000110be-\U000110c1"
    "\U00011141-\U00011143\U000111c5-\U000111c6\U000111cd\U000111de-\U000111df"
    "\U00011238-\U00011239\U0001123b-\U0001123c\U000112a9\U000113d4-\U000113d5"
    "\U0001144b-\U0001144c\U000115c2-\U000115c3\U000115c9-\U000115d7\U00011641-\U00011642"
    "\U0001173c-\U0001173e\U00011944\U00011946\U00011a42-\U00011a43\U00011a9b-\U00011a9c"
    "\U00011c41-\U00011c42\U00011ef7-\U00011ef8\U00011f43-\U00011f44\U00016a6e-\U00016a6f"
    "\U00016af5\U00016b37-\U00016b38\U00016b44\U00016d6e-\U00016d6f\U00016e98\U0001bc9f"
    "\U0001da88"
)
_TERMINAL = re.compile(f"[{SENTENCE_TERMINALS}]")
_HOLDS_DIGIT = re.compile(r"\S*\d")  # the next word holds a digit
_SHORT_WORD_END = re.compile(r"(?<![^\W\d_])[^\W\d_]{1,2}$")  # a whole word of 1-2 letters
_UNSPACED_RUN = re.compile(f"[{UNSPACED}]+")
_WORD = re.compile(r"\w[\w\u0300-\u036f\u0900-\u0dff]*", re.UNICODE)

# Words too common to help a keyword search; dropping them keeps BM25 queries fast.
STOPWORDS = frozenset(
    """a an and are as at be been but by can could did do does for from had has have how i if in
    into is it its many may much of on or so than that the their them then there these they this
    to was were what when where which who whom whose why will with would you your""".split()
)

#: Words that frame a question rather than name what it is about ("What happens if...", "Is
#: it possible to...", "What does it mean?"): a file need not hold them to answer it, so the
#: relevance gate's count of the question's words found in the files leaves them out.
FRAMING_WORDS = frozenset(
    "happen happens happened possible possibly mean means meant tell explain describe know"
    .split())


#: The letters that stand for a word where inflections must not matter (a prefix stem: no
#: dictionary, any spaced script): the evidence ranking compares words by them, and a
#: question's word counts as found in the files when one of theirs starts with them.
STEM = 5


def sentence_goes_on(text: str, stop: int, after: int) -> bool:
    """Whether the sentence terminal just before ``stop`` leaves its sentence open, the next
    text starting at ``after``. Two cues of Kiss and Strunk's Punkt that need no list of
    abbreviations: a full stop after a lone letter or a two-letter title-case word (an initial,
    a title, a short form: "John C. Messenger", "Дж. А. Гобсон", "Mr. Smith", "U.S.", "z. B."),
    within one line break; and a lower-case word after the terminal on the same line ("ca.
    drei", "1996 г. признал"), since in scripts with capitals a sentence starts with one. A
    blank line always ends it. "No." ends one unless a word with a digit follows ("No. 5",
    "Protocol No. SPHCC-125-2"): a reply, not a title. The price: a sentence that ends with
    a lone letter runs on."""
    if stop == 0 or after >= len(text) or not _TERMINAL.match(text, stop - 1):
        return False
    breaks = text.count("\n", stop, after)
    if breaks > 1:
        return False
    if not breaks and text[after].islower():
        return True
    if text[stop - 1] != ".":
        return False
    word = _SHORT_WORD_END.search(text, max(0, stop - 4), stop - 1)
    if word is not None and word.group() == "No" and not _HOLDS_DIGIT.match(text, after):
        return False  # the reply "No.", where "No. 5" and "No. SPHCC-125" mark a number
    return word is not None and (len(word.group()) == 1 or word.group().istitle())


def _bigrams(run: str) -> str:
    if len(run) == 1:
        return run
    return " ".join(run[i : i + 2] for i in range(len(run) - 1))


def index_text(text: str) -> str:
    """Return ``text`` as it is stored in the FTS5 index (unspaced scripts as bigrams)."""
    return _UNSPACED_RUN.sub(lambda m: f" {_bigrams(m.group())} ", text)


def words(text: str) -> list[str]:
    """The searchable words of ``text``, lower-cased, stopwords out (unspaced scripts as
    bigrams), in order and with repeats."""
    return [t for t in _WORD.findall(index_text(text).lower()) if t not in STOPWORDS]


def search_words(question: str, max_terms: int = 32) -> list[str]:
    """The distinct searchable words of a question, in order (at most ``max_terms``)."""
    return list(dict.fromkeys(words(question)))[:max_terms]


def subject_words(question: str) -> list[str]:
    """The search words of a question that name what it is about (:data:`FRAMING_WORDS`
    out)."""
    return [w for w in search_words(question) if w not in FRAMING_WORDS]


def quoted(term: str) -> str:
    """``term`` as an FTS5 string: quoted, so ``-``, ``:``, ``"`` or ``*`` in it are never
    syntax."""
    return '"' + term.replace('"', '""') + '"'


def stem_prefix(term: str) -> str | None:
    """The FTS5 prefix query that finds ``term``'s other forms (its first :data:`STEM`
    letters, then ``*``), or None for a word no longer than that, a number, or a bigram."""
    if len(term) <= STEM or any(c.isdigit() for c in term):
        return None
    return quoted(term[:STEM]) + "*"


def match_query(terms: list[str], prefixed: Collection[str] | None = None) -> str | None:
    """An FTS5 MATCH expression: the quoted ``terms`` joined by OR (None if there are none).

    A word longer than :data:`STEM` letters also matches the words that start as it does
    (:func:`stem_prefix`): "introduced" finds "introduction", "Москвы" finds "Москва",
    "Zellen" finds "Zelle". The exact word stays in the query, so a chunk that holds the
    question's very word still scores above one that holds another form. ``prefixed`` limits
    the words that get a prefix query (None: every one).
    """
    parts = []
    for term in terms:
        parts.append(quoted(term))
        prefix = stem_prefix(term) if prefixed is None or term in prefixed else None
        if prefix:
            parts.append(prefix)
    return " OR ".join(parts) if parts else None
