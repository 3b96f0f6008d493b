"""Source code and configuration files: the whole file as one section headed by its name."""

from __future__ import annotations

from pathlib import Path

from .base import Extraction, make_extraction
from .text import read_text

# fmt: off
SUFFIXES = frozenset((
    ".py", ".pyi", ".pyw", ".ipynb", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".jsx", ".vue",
    ".svelte", ".java", ".kt", ".kts", ".scala", ".groovy", ".gradle", ".c", ".h", ".cpp", ".hpp",
    ".cc", ".hh", ".cxx", ".hxx", ".m", ".mm", ".cs", ".fs", ".vb", ".go", ".rs", ".rb", ".php",
    ".swift", ".dart", ".lua", ".pl", ".pm", ".r", ".jl", ".hs", ".ml", ".mli", ".ex", ".exs",
    ".erl", ".clj", ".elm", ".zig", ".nim", ".v", ".sv", ".vhd", ".f90", ".asm", ".s", ".sh",
    ".bash", ".zsh", ".fish", ".ps1", ".bat", ".cmd", ".sql", ".proto", ".graphql", ".tf", ".hcl",
    ".nix", ".cmake", ".mk", ".yaml", ".yml", ".toml", ".ini", ".cfg", ".conf", ".properties",
    ".json", ".jsonc", ".json5", ".xml", ".xsd", ".xsl", ".css", ".scss", ".sass", ".less", ".tex",
    ".bib",
))
NAMES = frozenset((
    "Makefile", "Dockerfile", "Containerfile", "CMakeLists.txt", "Gemfile", "Rakefile",
    "Vagrantfile", "Jenkinsfile",
))
# fmt: on


def extract(path: Path) -> Extraction:
    """Source file: one section, ``heading`` = the file name."""
    text, encoding = read_text(path)
    return make_extraction([(text, None, path.name)], encoding=encoding)
