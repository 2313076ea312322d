"""Two corpora that ship with Python itself, so they need no download.

* **Python prose**: the docstrings of the standard library's modules, classes and
  functions: about 280k words of technical English written by many authors.
* **Python source**: the standard library's source code, about 12 MB of text, for
  character-level models.

Both read the ``.py`` files of the running interpreter's standard library (test
suites and ``site-packages`` excluded) in sorted path order, so the corpus is the same
on every machine with the same Python version. Docstrings are read with :mod:`ast`;
no module is imported.
"""

from __future__ import annotations

import ast
import functools
import sysconfig
from pathlib import Path

from course_lib.tokenizers import split_sentences, word_tokenize

_EXCLUDED_DIRECTORIES = {"site-packages", "test", "tests", "idle_test", "__pycache__"}
_DOCUMENTED_NODES = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def stdlib_source_files() -> list[Path]:
    """The standard library's ``.py`` files, tests excluded, sorted by relative path."""
    root = Path(sysconfig.get_paths()["stdlib"])
    files = [
        path
        for path in root.rglob("*.py")
        if not _EXCLUDED_DIRECTORIES.intersection(path.relative_to(root).parts)
    ]
    if not files:
        raise FileNotFoundError(
            f"found no Python source files under {root}; this Python installation ships its "
            "standard library without sources (.py files), so the stdlib corpora are unavailable"
        )
    return sorted(files, key=lambda path: path.relative_to(root).as_posix())


def _read_source(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return None


@functools.cache
def python_source_text() -> str:
    """The standard library's source text, files concatenated in sorted order (about 12 MB)."""
    sources = (_read_source(path) for path in stdlib_source_files())
    return "\n".join(source for source in sources if source is not None)


@functools.cache
def python_docstrings() -> tuple[str, ...]:
    """Every module, class and function docstring of the standard library, in a fixed order."""
    docstrings = []
    for path in stdlib_source_files():
        source = _read_source(path)
        if source is None:
            continue
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, _DOCUMENTED_NODES):
                docstring = ast.get_docstring(node)
                if docstring:
                    docstrings.append(docstring)
    return tuple(docstrings)


def _without_examples(docstring: str) -> str:
    """Drop interactive examples (``>>>`` and ``...`` lines and the output after them)."""
    kept, in_example = [], False
    for line in docstring.splitlines():
        stripped = line.lstrip()
        if stripped.startswith((">>>", "...")):
            in_example = True
        elif not stripped:
            in_example = False
        if not in_example:
            kept.append(line)
    return "\n".join(kept)


@functools.cache
def _prose_sentences(lowercase: bool) -> tuple[tuple[str, ...], ...]:
    return tuple(
        tuple(tokens)
        for docstring in python_docstrings()
        for sentence in split_sentences(_without_examples(docstring))
        if (tokens := word_tokenize(sentence, lowercase=lowercase))
    )


def python_prose_sentences(lowercase: bool = True) -> list[list[str]]:
    """The docstrings split into sentences of word tokens (see :func:`word_tokenize`).

    Interactive examples (``>>>`` sessions) are removed first: the corpus is the prose.
    """
    return [list(sentence) for sentence in _prose_sentences(lowercase)]
