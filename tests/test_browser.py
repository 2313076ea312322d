"""Every page of the website, loaded in a real browser with no internet.

The built site (``_build/html``, built once per session by ``conftest.py``) is served on
127.0.0.1 by a thread running Python's ``http.server``. Playwright drives Debian's chromium
(``/usr/bin/chromium``, installed by ``make test``); Playwright's own browser download is not
used. Any request to a host other than 127.0.0.1 is blocked and counts as a failure, so the
pages are checked as a reader without internet would see them. Each page is also saved as a
screenshot in ``_build/screenshots/``.

The layout is checked at the 1280-pixel-wide window: no code, output or equation wider than
the column, one search box, and figures whose smallest text is at least 80% of the body
text as the page shows it. A figure's PNG records its smallest text in points and its plots
side by side (``course_lib.plotting.use_book_style``); the page gives the figure's drawn and
natural widths, so the text's height on screen is points · dpi / 72 · drawn / natural. The
smallest figure text of each page is written to ``_build/screenshots/figure-text.csv``.
"""

from __future__ import annotations

import csv
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
from PIL import Image
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from playwright.sync_api import sync_playwright

from course_lib.plotting import PLOTS_ACROSS_KEY, SMALLEST_TEXT_KEY
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
# Elements of the article wider than the room they have: code and outputs (their lines must
# wrap), equations (they must fit or be broken), tables.
OVERFLOWING = """() => {
    const article = document.querySelector("main article") || document.querySelector("main");
    const describe = (node) => `${node.tagName.toLowerCase()}.${[...node.classList].join(".")}: `
        + `${Math.round(node.scrollWidth)} px in ${Math.round(node.clientWidth)} px: `
        + JSON.stringify((node.innerText || node.textContent || "").trim().slice(0, 80));
    const code = [...article.querySelectorAll("pre")]
        .filter((node) => node.scrollWidth > node.clientWidth + 1);
    const math = [...article.querySelectorAll("mjx-container[display='true']")].filter((node) => {
        const drawn = node.querySelector("svg") || node;
        return drawn.getBoundingClientRect().width > node.parentElement.clientWidth + 1
            || node.scrollWidth > node.clientWidth + 1;
    });
    const tables = [...article.querySelectorAll("table")]
        .filter((node) => node.getBoundingClientRect().width > article.clientWidth + 1);
    return [...code, ...math, ...tables].map(describe);
}"""
FIGURES = """() => {
    const paragraph = document.querySelector("main article p");
    return {
        body: parseFloat(getComputedStyle(paragraph).fontSize),
        figures: [...document.querySelectorAll("main article .cell_output img")].map((image) => ({
            src: image.getAttribute("src"), url: image.src,
            drawn: image.getBoundingClientRect().width, natural: image.naturalWidth,
        })),
    };
}"""
VISIBLE_SEARCH_BOXES = """() => [...document.querySelectorAll(
        ".search-button-field, .search-button, form.bd-search, input[type='search']")]
    .filter((node) => node.offsetParent !== null && node.getBoundingClientRect().width > 0)
    .map((node) => node.className)"""
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
    for old in [*SCREENSHOTS.glob("*.png"), FIGURE_TEXT_REPORT]:
        old.unlink(missing_ok=True)


FIGURE_TEXT_REPORT = SCREENSHOTS / "figure-text.csv"


def record_figure_text(page: str, figures: int, smallest_px: float | None, body_px: float) -> None:
    """Add a page's row to ``figure-text.csv``: its figures and their smallest text on screen."""
    new = not FIGURE_TEXT_REPORT.exists()
    with open(FIGURE_TEXT_REPORT, "a", newline="", encoding="utf-8") as report:
        writer = csv.writer(report)
        if new:
            writer.writerow(["page", "figures", "smallest text (px)", "body text (px)", "share of body text"])
        share = "" if smallest_px is None else f"{smallest_px / body_px:.0%}"
        smallest = "" if smallest_px is None else f"{smallest_px:.1f}"
        writer.writerow([page, figures, smallest, f"{body_px:g}", share])


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


@pytest.mark.parametrize("page", toc_pages())
def test_code_outputs_and_equations_fit_the_column(browser, site_url, page):
    with open_page(browser, site_url, f"{page}.html") as load:
        overflowing = load.page.evaluate(OVERFLOWING)
    assert not overflowing, f"{page}: wider than the column:\n" + "\n".join(overflowing)


@pytest.mark.parametrize("page", toc_pages())
def test_one_search_box(browser, site_url, page):
    with open_page(browser, site_url, f"{page}.html") as load:
        boxes = load.page.evaluate(VISIBLE_SEARCH_BOXES)
    assert len(boxes) == 1, f"{page}: {len(boxes)} search boxes: {boxes}"


@pytest.mark.parametrize("page", toc_pages())
def test_figure_text_is_at_least_80_percent_of_the_body_text(browser, site_url, built_site, page):
    with open_page(browser, site_url, f"{page}.html") as load:
        shown = load.page.evaluate(FIGURES)
    problems, sizes = [], []
    for figure in shown["figures"]:
        path = built_site / urlsplit(figure["url"]).path.lstrip("/")
        with Image.open(path) as image:
            recorded, dpi = image.info, image.info.get("dpi", (72, 72))[0]
        if SMALLEST_TEXT_KEY not in recorded:
            problems.append(f"{figure['src']}: drawn without course_lib.plotting.use_book_style()")
            continue
        if int(recorded[PLOTS_ACROSS_KEY]) > 2:
            problems.append(f"{figure['src']}: {recorded[PLOTS_ACROSS_KEY]} plots side by side (stack them)")
        if recorded[SMALLEST_TEXT_KEY] == "none":
            continue
        pixels = float(recorded[SMALLEST_TEXT_KEY]) * dpi / 72 * figure["drawn"] / figure["natural"]
        sizes.append(pixels)
        if pixels < 0.8 * shown["body"]:
            problems.append(
                f"{figure['src']}: text {pixels:.1f} px high, body text {shown['body']:g} px "
                f"({recorded[SMALLEST_TEXT_KEY]} pt at {dpi:.0f} dpi, drawn {figure['drawn']:.0f} of "
                f"{figure['natural']} px)")
    record_figure_text(page, len(shown["figures"]), min(sizes, default=None), shown["body"])
    assert not problems, f"{page}:\n" + "\n".join(problems)
