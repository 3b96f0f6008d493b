"""Grounded: private, offline question answering over a person's own files.

Importing the package changes nothing in the process: the entry points call
:func:`desktop.process.prepare` first.
"""


def __getattr__(name: str) -> str:
    """``desktop.__version__``: pyproject.toml's version, read from the installed metadata
    (the packaged app carries it too), so the version is written in one place only. Read on
    first use, not at import: the window's start-up does not pay for the metadata scan."""
    if name == "__version__":
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version("grounded")
        except PackageNotFoundError:  # a source tree that was never installed
            return "0+unknown"
    raise AttributeError(f"module 'desktop' has no attribute {name!r}")
