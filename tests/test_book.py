"""The website builds with warnings as errors, every chapter executes, and pages render offline."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
HTML = REPO / "_build" / "html"

pytestmark = pytest.mark.slow


def toc_pages() -> list[str]:
    """Every page named in ``_toc.yml`` (root, chapters, sections, parts), in order."""
    pages: list[str] = []

    def collect(node) -> None:
        if isinstance(node, dict):
            pages.extend(node[key] for key in ("root", "file") if key in node)
            for value in node.values():
                collect(value)
        elif isinstance(node, list):
            for value in node:
                collect(value)

    collect(yaml.safe_load((REPO / "_toc.yml").read_text()))
    return pages


@pytest.fixture(scope="module")
def built_site() -> Path:
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    result = subprocess.run(
        [str(bin_dir / "jupyter-book"), "build", ".", "--warningiserror", "--keep-going"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=1800,
    )
    assert result.returncode == 0, f"the book build failed:\n{result.stdout[-6000:]}\n{result.stderr[-3000:]}"
    return HTML


@pytest.mark.parametrize("page", toc_pages())
def test_page_is_built(built_site, page):
    html = (built_site / f"{page}.html").read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in html
    assert '<html lang="en"' in html


@pytest.mark.parametrize("page", [p for p in toc_pages() if (REPO / f"{p}.ipynb").exists()])
def test_chapter_has_executed_figures_and_math(built_site, page):
    html = (built_site / f"{page}.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]+src="([^"]+\.png)"', html)
    assert images, f"{page} shows no figure"
    for src in images:
        assert (built_site / page).parent.joinpath(src).resolve().is_file(), src
    assert re.search(r'class="math[^"]*"', html), f"{page} has no math"


def test_mathjax_is_served_by_the_site(built_site):
    html = (built_site / "book" / "intro.html").read_text(encoding="utf-8")
    assert re.search(r'src="\.\./_static/mathjax/tex-svg-full\.js(\?v=\w+)?"', html)
    assert (built_site / "_static" / "mathjax" / "tex-svg-full.js").stat().st_size > 1_000_000
    scripts = re.findall(r'<script[^>]+src="([^"]+)"', html)
    assert not [src for src in scripts if src.startswith(("http:", "https:", "//"))], scripts
