import re

from desktop.core.storage import keywords


def test_cjk_and_thai_become_bigrams():
    assert keywords.index_text("东京大学") .split() == ["东京", "京大", "大学"]
    assert "กร" in keywords.index_text("กรุงเทพ").split()[0]


def test_latin_text_is_untouched():
    assert keywords.index_text("The quick fox.") == "The quick fox."


def test_query_quotes_every_term_and_drops_stopwords():
    q = keywords.match_query(keywords.search_words('What is "NEAR"-by: the col:umn* -x?'))
    assert q is not None
    assert "what" not in q.lower().split(" or ")
    for term in q.split(" OR "):
        assert term.startswith('"') and term.endswith('"')


def test_query_of_only_stopwords_is_none():
    assert keywords.match_query(keywords.search_words("what is the")) is None
    assert keywords.match_query(keywords.search_words("?!")) is None


def test_hostile_queries_become_quoted_terms_that_fts5_runs(store):
    store.con.execute("INSERT INTO chunk_fts(rowid, text) VALUES (1, 'near column star')")

    def hits(question: str) -> list[int] | None:
        q = keywords.match_query(keywords.search_words(question))
        return None if q is None else [r[0] for r in store.con.execute(
            "SELECT rowid FROM chunk_fts WHERE chunk_fts MATCH ?", (q,))]

    # FTS5 operators and syntax around real words: the words are still found.
    for question in ['"column', "column-b", "col:umn star", "NEAR(column star)", "star AND",
                     "star*", "^column"]:
        assert hits(question) == [1], question
    # Nothing but punctuation: no query at all; words absent from the text: no row.
    for question in ['"', "*", "^", "-:"]:
        assert hits(question) is None, question
    assert hits("東京-大学") == []


def test_thai_and_chinese_are_found_by_keyword(store):
    for rowid, text in [(1, "กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย"), (2, "北京是中国的首都。"),
                        (3, "Berlin ist die Hauptstadt Deutschlands.")]:
        store.con.execute("INSERT INTO chunk_fts(rowid, text) VALUES (?, ?)",
                          (rowid, keywords.index_text(text)))

    def hits(question: str) -> list[int]:
        q = keywords.match_query(keywords.search_words(question))
        return [r[0] for r in store.con.execute(
            "SELECT rowid FROM chunk_fts WHERE chunk_fts MATCH ? ORDER BY rank", (q,))]

    assert hits("เมืองหลวงของไทยคืออะไร")[0] == 1
    assert hits("中国的首都是哪里？")[0] == 2
    assert hits("Hauptstadt Deutschlands")[0] == 3


def test_a_long_word_also_finds_its_other_forms(store):
    for rowid, text in [(1, "The introduction of the species"), (2, "В Москве идёт снег"),
                        (3, "The species was introduced in 1982"), (4, "Numbers 198245")]:
        store.con.execute("INSERT INTO chunk_fts(rowid, text) VALUES (?, ?)",
                          (rowid, keywords.index_text(text)))

    def hits(question: str, prefixes: bool = True) -> list[int]:
        q = keywords.match_query(keywords.search_words(question), None if prefixes else ())
        return [r[0] for r in store.con.execute(
            "SELECT rowid FROM chunk_fts WHERE chunk_fts MATCH ? ORDER BY rank", (q,))]

    assert hits("introduced") == [3, 1]  # the very word first, then another form
    assert hits("introduced", prefixes=False) == [3]
    assert hits("Москвы") == [2] and hits("Москвы", prefixes=False) == []
    assert hits("198201") == []  # a number is not a stem
    assert keywords.stem_prefix("zellen") == '"zelle"*'
    assert keywords.stem_prefix("cell") is None and keywords.stem_prefix("东京") is None


def test_the_sentence_terminals_are_unicodes():
    import regex

    every = "".join(map(chr, range(0x20, 0x110000)))
    unicode = set(regex.findall(r"\p{Sentence_Terminal}", every))
    ours = set(re.findall(f"[{keywords.SENTENCE_TERMINALS}]", every))
    assert ours == unicode and {"।", "؟", "።", "。", "."} <= ours
