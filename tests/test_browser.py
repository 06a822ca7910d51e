"""Readers' view: the built HTML book in a real headless Chromium.

Every page listed in ``_toc.yml`` loads, has its figures (no broken images), shows no error output, renders math
locally (no CDN: the page must not reference an external MathJax), and the "next" link navigates. Both books are
checked: the smoke book (``book/_build/html``, from ``make book``) and the published standard book
(``build/published-standard/_build/html``, from ``molesyn book build --published standard``), which is the one most
readers see. A screenshot of each page is saved under ``book/_build/screenshots/<book>/`` as a test artefact.

Needs Debian's ``chromium`` and ``chromium-driver`` and a built book (``make book``). Without them the tests are skipped
with the reason, unless ``MOLESYN_REQUIRE_BROWSER=1`` (set by ``.ci/run``) turns the skip into a failure.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "book" / "_build" / "html"
#: The built books this test reads: the smoke book and the published standard book.
BOOKS = {"smoke": HTML, "published": ROOT / "build" / "published-standard" / "_build" / "html"}
PUBLISHED_PROVENANCE = ROOT / "published" / "standard" / "provenance.json"
SHOTS = ROOT / "book" / "_build" / "screenshots"
REQUIRED = os.environ.get("MOLESYN_REQUIRE_BROWSER") == "1"


def toc_pages() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [c["file"] for c in part["chapters"]]
    return pages


def _missing_reason(book: str) -> str | None:
    if not (BOOKS[book] / "index.html").exists():
        if book == "published":
            return "the published book is not built (run `molesyn book build --published standard`)"
        return "the book is not built (run `make book`)"
    if not shutil.which("chromium") or not shutil.which("chromedriver"):
        return "Debian chromium/chromium-driver are not installed"
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed"
    return None


@pytest.fixture(scope="module", params=list(BOOKS))
def book(request):
    return request.param


@pytest.fixture(scope="module")
def server(book):
    reason = _missing_reason(book)
    if reason:  # CI builds the published book only when something is published
        if REQUIRED and (book == "smoke" or PUBLISHED_PROVENANCE.exists()):
            pytest.fail(reason)
        pytest.skip(reason)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(BOOKS[book]))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser(server, tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--window-size=1280,1600", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


@pytest.mark.parametrize("page", toc_pages())
def test_page_renders(server, browser, book, page):
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{server}/{page}.html")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.readyState") == "complete")
    title = browser.title
    assert title and "404" not in title
    broken = browser.execute_script(
        "return Array.from(document.images).filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.src)")
    assert broken == [], f"broken images on {page}: {broken}"
    errors = browser.execute_script(
        "return Array.from(document.querySelectorAll('.output.traceback, .output.error, .cell_output .traceback'))"
        ".map(e => e.innerText.slice(0, 200))")
    assert errors == [], f"error outputs on {page}: {errors}"
    external = browser.execute_script(
        "return Array.from(document.scripts).map(s => s.src).filter(s => s && !s.startsWith(location.origin))")
    assert external == [], f"{page} loads scripts from outside the book: {external}"
    raw_tables = browser.execute_script(
        "return Array.from(document.querySelectorAll('.bd-article p')).map(p => p.innerText)"
        ".filter(t => t.includes('|---|') || /^\\|.*\\|$/.test(t.trim())).map(t => t.slice(0, 120))")
    assert raw_tables == [], f"{page} shows markdown tables as raw text: {raw_tables}"
    overflow = browser.execute_script("return document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{page} is {overflow} px wider than the 1280 px window"
    hidden = browser.execute_script(  # scoreboard tables must show every column without scrolling
        "return Array.from(document.querySelectorAll('.scoreboard table'))"
        ".map(t => t.scrollWidth - t.clientWidth).filter(d => d > 2)")
    assert hidden == [], f"{page}: scoreboard table columns hidden behind a scroll bar ({hidden} px)"
    if page.startswith("chapters/"):
        figures = browser.execute_script("return document.querySelectorAll('.cell_output img').length")
        assert figures > 0, f"{page} has no figures"
        uncaptioned = browser.execute_script(
            "return Array.from(document.querySelectorAll('.cell_output img'))"
            ".filter(i => !(i.closest('figure') && i.closest('figure').querySelector('figcaption'))).length")
        assert uncaptioned == 0, f"{page} has {uncaptioned} figures without a caption"
    if browser.execute_script("return document.querySelectorAll('.math').length") > 0:
        try:
            WebDriverWait(browser, 20).until(
                lambda d: d.execute_script("return document.querySelectorAll('mjx-container').length") > 0)
        except TimeoutException:
            pass
        rendered = browser.execute_script("return document.querySelectorAll('mjx-container').length")
        assert rendered > 0, f"math on {page} was not rendered by the local MathJax"
    (SHOTS / book).mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / book / f"{page.replace('/', '__')}.png"))


def test_navigation_next_links(server, browser):
    pages = toc_pages()
    browser.get(f"{server}/{pages[0]}.html")
    visited = [pages[0]]
    for _ in range(len(pages) - 1):
        links = browser.find_elements("css selector", "a.right-next")
        assert links, f"no 'next' link on {visited[-1]}"
        links[0].click()
        visited.append(browser.current_url.split(server + "/", 1)[1].removesuffix(".html"))
    assert visited == pages
