"""The website builds with warnings as errors, every chapter executes, and pages render offline.

These tests read the built HTML; ``tests/test_browser.py`` loads the same pages in a browser.
The book is built once per session (the ``built_site`` fixture of ``conftest.py``).
"""

from __future__ import annotations

import importlib.util
import re
import sys
import time
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup

from tests.conftest import BUILD_TIMES, REPO, build_book, chapter_pages, toc_pages

pytestmark = pytest.mark.slow

CONFIG = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
LANGUAGE = CONFIG["sphinx"]["config"]["language"]
# Pages Sphinx writes besides those of the table of contents.
EXTRA_PAGES = ["search", "genindex"]
# <link rel="..."> values that make the browser fetch the target.
FETCHED_LINKS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut",
                 "apple-touch-icon", "manifest", "preconnect", "dns-prefetch"}
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)['"]?\s*\)|@import\s+['"]([^'"]+)['"]""")


def soup(built_site: Path, page: str) -> BeautifulSoup:
    return BeautifulSoup((built_site / f"{page}.html").read_text(encoding="utf-8"), "html.parser")


def is_external(url: str) -> bool:
    """Whether the browser would fetch ``url`` from another host (data: URLs are inline)."""
    parts = urlsplit(url.strip())
    return bool(parts.netloc) or parts.scheme not in ("", "data", "blob")


def fetched_urls(document: BeautifulSoup) -> list[str]:
    """Every URL a page makes the browser fetch to render it (not the links a reader may follow)."""
    urls = []
    for tag in document.find_all(["script", "img", "source", "iframe", "embed", "video", "audio",
                                  "track", "input"]):
        urls += [tag[name] for name in ("src", "data-src", "poster") if tag.get(name)]
        if tag.get("srcset"):
            urls += [entry.split()[0] for entry in tag["srcset"].split(",") if entry.strip()]
    for tag in document.find_all("link", href=True):
        if FETCHED_LINKS & {rel.lower() for rel in tag.get("rel", [])}:
            urls.append(tag["href"])
    urls += [tag["data"] for tag in document.find_all("object", data=True)]
    for tag in document.find_all(style=True):
        urls += [a or b for a, b in CSS_URL.findall(tag["style"])]
    for tag in document.find_all("style"):
        urls += [a or b for a, b in CSS_URL.findall(tag.get_text())]
    return urls


def local_stylesheets(built_site: Path, page: str, document: BeautifulSoup) -> list[Path]:
    base = f"http://site/{page}.html"
    sheets = []
    for tag in document.find_all("link", href=True, rel="stylesheet"):
        path = urlsplit(urljoin(base, tag["href"])).path.lstrip("/")
        sheets.append(built_site / path)
    return sheets


@pytest.mark.parametrize("page", toc_pages())
def test_page_is_built_and_declares_its_language(built_site, page):
    html = (built_site / f"{page}.html").read_text(encoding="utf-8")
    assert "Traceback (most recent call last)" not in html
    assert f'<html lang="{LANGUAGE}"' in html


@pytest.mark.parametrize("page", EXTRA_PAGES)
def test_search_and_index_pages_declare_their_language(built_site, page):
    assert f'<html lang="{LANGUAGE}"' in (built_site / f"{page}.html").read_text(encoding="utf-8")


@pytest.mark.parametrize("page", chapter_pages())
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


@pytest.mark.parametrize("page", toc_pages() + EXTRA_PAGES)
def test_page_fetches_nothing_from_other_hosts(built_site, page):
    """Scripts, stylesheets, fonts, images and preloads all come from the site itself."""
    document = soup(built_site, page)
    urls = fetched_urls(document)
    assert urls, f"{page}: no resource found, the page parser is broken"
    assert not [url for url in urls if is_external(url)]
    base = f"http://site/{page}.html"
    for url in urls:
        if not url.startswith(("data:", "blob:")):
            target = built_site / urlsplit(urljoin(base, url)).path.lstrip("/")
            assert target.is_file(), f"{page} refers to {url}, which is not in the site"
    for sheet in local_stylesheets(built_site, page, document):
        css = sheet.read_text(encoding="utf-8")
        css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # licences and source maps in comments
        external = [a or b for a, b in CSS_URL.findall(css) if is_external(a or b)]
        assert not external, f"{sheet.relative_to(built_site)} fetches {external}"


@pytest.mark.parametrize("page", toc_pages() + EXTRA_PAGES)
def test_page_has_each_script_once(built_site, page):
    """A script run twice fails in the browser (a ``const`` declared twice is a SyntaxError)."""
    scripts = [(tag.get("src"), tag.get_text()) for tag in soup(built_site, page).find_all("script")
               if tag.get("src") or tag.get_text().strip()]
    assert not [script for script in set(scripts) if scripts.count(script) > 1]


@pytest.mark.parametrize("page", toc_pages())
def test_every_image_has_alt_text(built_site, page):
    for image in soup(built_site, page).find_all("img"):
        alt = (image.get("alt") or "").strip()
        assert alt, f"{page}: <img src={image.get('src')!r}> has no alt text"
        assert not alt.endswith((".png", ".svg", ".jpg", ".jpeg", ".gif")), \
            f"{page}: the alt text of {image.get('src')!r} is a file name, not a description"


def test_figure_alt_text_describes_the_plot(built_site):
    """The alt texts read from the plotting code name what is plotted against what."""
    alts = [image["alt"] for page in chapter_pages()
            for image in soup(built_site, page).find_all("img")]
    assert any(" against " in alt and "titled" in alt for alt in alts), alts


def link_target(page: str, href: str) -> str:
    """The page (``book/rnn``) that a link on ``page`` leads to; an empty href is the page itself."""
    path = urlsplit(urljoin(f"http://site/{page}.html", href)).path.lstrip("/")
    return path.removesuffix(".html") if href.split("#")[0] else page


def test_navigation_follows_the_table_of_contents(built_site):
    pages = toc_pages()
    for index, page in enumerate(pages):
        document = soup(built_site, page)
        links = {rel: tag["href"] for tag in document.find_all("link", href=True)
                 for rel in tag.get("rel", []) if rel in ("prev", "next")}
        if index + 1 < len(pages):
            assert link_target(page, links.get("next", "")) == pages[index + 1], f"{page}: next page"
        else:
            assert "next" not in links
        if index > 0:
            assert link_target(page, links.get("prev", "")) == pages[index - 1], f"{page}: previous page"
        sidebar = document.select_one("nav.bd-docs-nav")
        assert sidebar is not None, f"{page} has no navigation sidebar"
        order = [link_target(page, a["href"]) for a in sidebar.select("a.reference.internal")]
        assert order == pages, f"{page}: the sidebar lists {order}"


@pytest.mark.parametrize("page", chapter_pages())
def test_chapter_offers_its_exercise_notebook_for_download(built_site, page):
    links = soup(built_site, page).select("a.reference.download")
    notebooks = [a["href"] for a in links if a["href"].endswith(".ipynb")]
    assert len(notebooks) == 1, f"{page} should link exactly one exercise notebook: {notebooks}"
    downloaded = (built_site / page).parent.joinpath(notebooks[0]).resolve()
    assert downloaded.is_relative_to((built_site / "_downloads").resolve()), downloaded
    released = REPO / "exercises" / downloaded.stem / downloaded.name
    assert released.is_file(), f"{page} links {downloaded.name}, which is not an exercise notebook"
    assert downloaded.read_bytes() == released.read_bytes(), "the site serves an outdated notebook"
    notebook = nbformat.reads(downloaded.read_text(encoding="utf-8"), as_version=4)
    nbformat.validate(notebook)
    solutions = REPO / "solutions" / downloaded.stem / downloaded.name
    assert downloaded.read_bytes() != solutions.read_bytes(), "the site serves the solution"


def test_instructor_page_documents_the_grading_workflow(built_site):
    assert "book/instructor" in toc_pages()
    text = " ".join(soup(built_site, "book/instructor").select_one("main").get_text().split())
    for command in ("make exercises", "nbgrader generate_assignment", "nbgrader zip_collect",
                    "nbgrader collect", "nbgrader autograde", "nbgrader generate_feedback",
                    "nbgrader export", "binderhub_url", "jupyterhub_url", "colab_url"):
        assert command in text, f"the instructor page does not mention {command}"
    # The page shows the repository's own nbgrader configuration, not a copy of it.
    config = (REPO / "nbgrader_config.py").read_text(encoding="utf-8")
    for line in config.splitlines():
        if line.startswith("c."):
            assert line.split("=")[0].strip() in text, line


def test_launch_buttons_follow_the_configuration(built_site):
    buttons = CONFIG.get("launch_buttons", {})
    enabled = any(buttons.get(key) for key in ("binderhub_url", "jupyterhub_url", "colab_url", "thebe"))
    for page in chapter_pages():
        html = (built_site / f"{page}.html").read_text(encoding="utf-8")
        shown = "dropdown-launch-buttons" in html
        assert shown == (enabled and bool(CONFIG.get("repository", {}).get("url"))), page


def test_a_rebuild_executes_no_notebook(built_book):
    """Every chapter is in the execution cache, and a second build re-executes nothing."""
    from jupyter_cache import get_cache

    cache = get_cache(str(REPO / CONFIG["execute"]["cache"]))
    for page in chapter_pages():
        notebook = nbformat.read(REPO / f"{page}.ipynb", as_version=4)
        cache.match_cache_notebook(notebook)  # raises KeyError when the code has no cached run

    start = time.perf_counter()
    result = build_book()
    seconds = time.perf_counter() - start
    assert result.returncode == 0, result.stdout[-3000:]
    log = result.stdout + result.stderr
    assert "Executing notebook" not in log, log[-3000:]
    BUILD_TIMES["rebuild with nothing changed"] = seconds


def load_figure_alt():
    spec = importlib.util.spec_from_file_location("figure_alt", REPO / "book" / "_ext" / "figure_alt.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_figure_alt_reads_titles_and_axis_labels_from_the_code():
    figure_alt = load_figure_alt()
    code = """
fig, (left, right) = plt.subplots(1, 2)
line_plot(x, {"train": a, "test": b}, "epoch", "loss (nats)", title="Training", ax=left)
right.plot(x, c)
right.set_title("Gradient norm")
right.set_xlabel("update")
right.set_ylabel("$\\\\|g\\\\|$")
plt.show()
%matplotlib inline
ax = line_plot(x, {f"n = {n}": y for n in ns}, "pseudo-count k", "perplexity", title=f"Add-{k}")
plt.show()
plt.imshow(grid)
plt.show()
"""
    first, second, third = (figure.describe() for figure in figure_alt.figures_in_code(code))
    assert first == ("Figure with 2 panels. Panel 1: Line plot titled “Training”: loss (nats) against "
                     "epoch, one curve each for train, test; panel 2: Line plot titled “Gradient norm”: "
                     "|g| against update.")
    assert second == "Line plot titled “Add-…”: perplexity against pseudo-count k."
    assert third == "Image."
    assert figure_alt.figures_in_code("print('no figure')") == []
    assert figure_alt.figures_in_code("this is not Python") == []
    assert figure_alt.author_alts({"figure_alt": ["a", "b"]}) == ["a", "b"]
    assert figure_alt.author_alts({"figure_alt": "  "}) is None
