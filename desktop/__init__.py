"""Grounded: private, offline question answering over a person's own files."""

__version__ = "0.1.0"
