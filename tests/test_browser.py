"""Every page of the website, loaded in a real browser with no internet.

The built site (``_build/html``, built once per session by ``conftest.py``) is served on
127.0.0.1 by a thread running Python's ``http.server``. Playwright drives Debian's chromium
(``/usr/bin/chromium``, installed by ``make test``); Playwright's own browser download is not
used. Any request to a host other than 127.0.0.1 is blocked and counts as a failure, so the
pages are checked as a reader without internet would see them. Each page is also saved as a
screenshot in ``_build/screenshots/``.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote, urljoin, urlsplit

import nbformat
import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

from tests.conftest import REPO, chapter_pages, toc_pages

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
]
SCREENSHOTS = REPO / "_build" / "screenshots"
# Words too common to tell the pages apart in a search.
STOP_WORDS = {"about", "against", "between", "through", "their", "there", "which", "where", "other"}

# The text a reader sees, without code (which may hold $ or backslashes of its own) and
# without the math MathJax has already typeset.
VISIBLE_TEXT = """() => {
    const main = document.querySelector("main") || document.body;
    const copy = main.cloneNode(true);
    copy.querySelectorAll("pre, code, script, style, mjx-container, .highlight, textarea")
        .forEach((node) => node.remove());
    return copy.innerText;
}"""
MATH_STATE = """() => {
    const math = [...document.querySelectorAll(".math")];
    return {
        math: math.length,
        typeset: math.filter((node) => node.querySelector("mjx-container")).length,
        containers: document.querySelectorAll("mjx-container").length,
        errors: document.querySelectorAll("mjx-merror").length,
    };
}"""
BROKEN_IMAGES = """() => [...document.images]
    .filter((image) => !image.complete || image.naturalWidth === 0)
    .map((image) => image.getAttribute("src"))"""
IMAGES_WITHOUT_ALT = """() => [...document.images]
    .filter((image) => !(image.getAttribute("alt") || "").trim())
    .map((image) => image.getAttribute("src"))"""


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format, *args) -> None:
        pass  # no line per request in the test output


@pytest.fixture(scope="session")
def site_url(built_site: Path) -> Iterator[str]:
    """The built site, served on 127.0.0.1 (a free port) for the whole session."""
    handler = functools.partial(QuietHandler, directory=str(built_site))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """A headless chromium with a fresh, empty profile (a new temporary --user-data-dir)."""
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: `make test` installs it (apt-get install chromium)")

    profile = tmp_path_factory.mktemp("chromium-profile")
    assert not any(profile.iterdir())
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
            service_workers="block",
        )
        yield context
        context.close()


@dataclass
class PageLoad:
    """A page and everything that went wrong while it loaded."""

    page: object
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)

    def problems(self) -> list[str]:
        return ([f"console error: {text}" for text in self.console_errors]
                + [f"error in the page: {text}" for text in self.page_errors]
                + [f"failed request: {text}" for text in self.failed]
                + [f"request to another host: {url}" for url in self.foreign])


@contextmanager
def open_page(browser, site_url: str, path: str) -> Iterator[PageLoad]:
    """Load ``path`` of the site; block and record requests to other hosts; wait for MathJax.

    The site's storage is cleared afterwards, so every page is seen as on a first visit.
    """
    page = browser.new_page()
    try:
        yield load_page(page, site_url, path)
    finally:
        with suppress(PlaywrightError):
            page.evaluate("() => { localStorage.clear(); sessionStorage.clear(); }")
        page.close()


def load_page(page, site_url: str, path: str) -> PageLoad:
    load = PageLoad(page)
    own_host = urlsplit(site_url).netloc

    def route(route) -> None:
        url = route.request.url
        if url.startswith(("data:", "blob:")) or urlsplit(url).netloc == own_host:
            route.continue_()
        else:
            load.foreign.append(url)
            route.abort()

    page.route("**/*", route)
    page.on("console", lambda message: message.type == "error" and load.console_errors.append(
        f"{message.text} ({message.location.get('url', '')})"))
    page.on("pageerror", lambda error: load.page_errors.append(str(error)))
    page.on("requestfailed", lambda request: load.failed.append(f"{request.url}: {request.failure}"))
    page.on("response", lambda response: response.status >= 400 and load.failed.append(
        f"{response.url}: HTTP {response.status}"))
    page.goto(urljoin(site_url, path), wait_until="load")
    # MathJax typesets after the page has loaded; startup.promise resolves when it is done.
    try:
        page.wait_for_function("() => !window.MathJax || window.MathJax.startup?.promise", timeout=30_000)
        page.evaluate("() => window.MathJax?.startup.promise")
    except PlaywrightTimeoutError:
        load.page_errors.append("MathJax did not start within 30 s")
    page.wait_for_load_state("networkidle")
    return load


def screenshot_path(page: str) -> Path:
    return SCREENSHOTS / f"{page.replace('/', '__')}.png"


def search_term(title: str) -> str:
    """A word from a page's title to search for: its longest word (ties: the first)."""
    words = [word for word in re.findall(r"[A-Za-z]+", title.lower()) if word not in STOP_WORDS]
    return max(words, key=len)


@pytest.fixture(scope="session", autouse=True)
def fresh_screenshots() -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    for old in SCREENSHOTS.glob("*.png"):
        old.unlink()


@pytest.mark.parametrize("page", toc_pages())
def test_page_loads_offline_with_math_and_images(browser, site_url, page):
    with open_page(browser, site_url, f"{page}.html") as load:
        view = load.page
        assert not load.problems(), "\n".join(load.problems())

        text = view.evaluate(VISIBLE_TEXT)
        assert "$$" not in text, "raw $$ math left in the page"
        assert "\\(" not in text and "\\[" not in text, "raw \\( or \\[ math left in the page"
        math = view.evaluate(MATH_STATE)
        assert math["typeset"] == math["math"], f"math not typeset: {math}"
        assert math["errors"] == 0, f"MathJax could not typeset some math: {math}"
        html = (REPO / "_build" / "html" / f"{page}.html").read_text(encoding="utf-8")
        if 'class="math' in html:
            assert math["containers"] > 0, "a page with math shows no MathJax output"

        assert view.evaluate("() => document.images.length") >= (1 if page in chapter_pages() else 0)
        assert not view.evaluate(BROKEN_IMAGES), "images that did not load"
        assert not view.evaluate(IMAGES_WITHOUT_ALT), "images without alt text"
        assert view.evaluate("() => document.documentElement.lang"), "the page declares no language"

        view.screenshot(path=str(screenshot_path(page)), full_page=True)
        assert screenshot_path(page).stat().st_size > 10_000


@pytest.mark.parametrize("page", chapter_pages())
def test_exercise_download_link_gives_a_valid_notebook(browser, site_url, page):
    with open_page(browser, site_url, f"{page}.html") as load:
        links = load.page.locator("a.reference.download[href$='.ipynb']")
        assert links.count() == 1, f"{page}: expected one exercise download link"
        link = links.first
        assert link.is_visible()
        assert link.get_attribute("download") is not None, "the link should download, not navigate"
        url = urljoin(load.page.url, link.get_attribute("href"))
        assert urlsplit(url).netloc == urlsplit(site_url).netloc
        response = browser.request.get(url)
        assert response.ok, f"{url}: HTTP {response.status}"
        notebook = nbformat.reads(response.text(), as_version=4)
        nbformat.validate(notebook)
        name = Path(urlsplit(url).path).name
        released = REPO / "exercises" / Path(name).stem / name
        assert response.body() == released.read_bytes(), f"{page} does not serve {released}"
        assert not load.problems(), "\n".join(load.problems())


@pytest.mark.parametrize("page", toc_pages())
def test_search_finds_the_page_from_a_word_of_its_title(browser, site_url, page):
    with open_page(browser, site_url, f"{page}.html") as load:
        title = load.page.locator("main h1").first.inner_text()
    term = search_term(title)
    with open_page(browser, site_url, f"search.html?q={quote(term)}") as load:
        view = load.page
        view.wait_for_function(
            "() => { const status = document.querySelector('#search-results .search-summary');"
            " return status && status.innerText.trim() !== ''; }", timeout=30_000)  # search finished
        results = view.locator("#search-results ul.search li a").evaluate_all(
            "(links) => links.map((link) => link.href)")
        found = [urlsplit(url).path.lstrip("/").removesuffix(".html") for url in results]
        assert page in found, f"searching {term!r} (from {title!r}) found {found}"
        assert not load.problems(), "\n".join(load.problems())
