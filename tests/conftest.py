"""Shared fixtures: the website is built once per test session and reused by every test of it;
the tests of tiny models run PyTorch on one thread."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"
BUILD_COMMAND = ["build", ".", "--warningiserror", "--keep-going"]
# Seconds taken by the builds of this session, shown at the end of the test report.
BUILD_TIMES: dict[str, float] = {}
# The corpora come from the local mirror beside the repository when there is one, as with `make`.
MIRROR = REPO.parent / "shared" / "data"
if "COURSE_LIB_MIRROR" not in os.environ and MIRROR.is_dir():
    os.environ["COURSE_LIB_MIRROR"] = str(MIRROR)


def toc_pages() -> list[str]:
    """Every page named in ``_toc.yml`` (root, chapters, sections, parts), in reading order."""
    pages: list[str] = []

    def collect(node) -> None:
        if isinstance(node, dict):
            pages.extend(node[key] for key in ("root", "file") if key in node)
            for key, value in node.items():
                if key not in ("root", "file"):
                    collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8")))
    return pages


def chapter_pages() -> list[str]:
    """The pages of the part "Chapters" of ``_toc.yml``: notebooks, each with an assignment."""
    toc = yaml.safe_load((REPO / "_toc.yml").read_text(encoding="utf-8"))
    (part,) = [part for part in toc["parts"] if part["caption"] == "Chapters"]
    return [chapter["file"] for chapter in part["chapters"]]


def build_book() -> subprocess.CompletedProcess:
    """``jupyter-book build`` as ``make book`` runs it, with the environment's tools on the PATH."""
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    return subprocess.run(
        [str(bin_dir / "jupyter-book"), *BUILD_COMMAND],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=3600,
    )


@dataclass
class BuiltSite:
    html: Path
    seconds: float  # how long the session's build took
    log: str


@pytest.fixture(scope="module")
def one_thread():
    """PyTorch on one thread for a module's tests: tiny models run fastest so, also on a shared CPU.

    A module asks for it with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def built_book() -> BuiltSite:
    """Build the book once for the whole session (unchanged chapters come from the cache)."""
    start = time.perf_counter()
    result = build_book()
    seconds = time.perf_counter() - start
    BUILD_TIMES["book build"] = seconds
    assert result.returncode == 0, f"the book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return BuiltSite(HTML, seconds, result.stdout + result.stderr)


@pytest.fixture(scope="session")
def built_site(built_book: BuiltSite) -> Path:
    """The folder of the built website, ``_build/html``."""
    return built_book.html


def pytest_terminal_summary(terminalreporter) -> None:
    if BUILD_TIMES:
        times = ", ".join(f"{name}: {seconds:.1f} s" for name, seconds in BUILD_TIMES.items())
        terminalreporter.write_line(f"jupyter-book build times: {times}")
