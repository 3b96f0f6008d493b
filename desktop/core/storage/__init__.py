"""The one SQLite file: documents, chunks, sqlite-vec vectors and FTS5 keywords, migrations."""
