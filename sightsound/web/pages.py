"""The pages' HTML: each ``static/NAME.html`` with the shared header and "Next" link filled in.

:data:`PAGES` lists the pages in the order a reader of the chapter follows
them (train a model, look at its test results, draw for it, then speech, then teaching it
your own words). The
header's navigation, each page's link to the next one and the "page not
found" page are made from it here, so the order and the titles have one home
and the HTML files only mark where they go.

>>> [link for link in PAGES]
['train', 'test', 'draw', 'speech', 'teach']
>>> wants_page("/nope", "text/html,application/xhtml+xml"), wants_page("/api/nope", "text/html")
(True, False)
"""

from __future__ import annotations

import html
from pathlib import Path

STATIC_DIR = Path(__file__).parent / "static"

#: URL name -> (title in the navigation, HTML file), in the chapter's order.
PAGES = {"train": ("Train", "train.html"), "test": ("Test results", "test.html"),
         "draw": ("Draw", "draw.html"), "speech": ("Speech", "speech.html"),
         "teach": ("Teach words", "teach.html")}
FIRST_PAGE = f"/{next(iter(PAGES))}"
HEADER_MARK = "<!-- header -->"
FOOTER_MARK = "<!-- footer -->"
NOT_FOUND_FILE = "not-found.html"
#: URL prefixes of machine resources: an unknown one is answered with JSON, never with a page.
MACHINE_PREFIXES = ("/api/", "/ws/", "/models/", "/vendor/", "/static/")


def header(current: str | None) -> str:
    """The site header: the brand and one link per page, the current one marked for screen readers too."""
    current_mark = ' aria-current="page"'
    links = "".join(f'<a href="/{name}"{current_mark if name == current else ""}>{html.escape(title)}</a>'
                    for name, (title, _file) in PAGES.items())
    return (f'<header>\n  <a class="skip" href="#main">Skip to the page</a>\n'
            f'  <a class="brand" href="{FIRST_PAGE}">sightsound</a>\n'
            f'  <nav aria-label="Pages">{links}</nav>\n</header>')


def footer(current: str | None) -> str:
    """The link to the page after ``current`` in the chapter's order (none after the last page)."""
    names = list(PAGES)
    if current not in names or current == names[-1]:
        return ""
    following = names[names.index(current) + 1]
    return (f'<footer><a class="next" href="/{following}">Next: {html.escape(PAGES[following][0])} '
            f'<span aria-hidden="true">→</span></a></footer>')


def render(page: str) -> str:
    """The HTML of ``page`` (a key of :data:`PAGES`) with its header and footer."""
    text = (STATIC_DIR / PAGES[page][1]).read_text(encoding="utf-8")
    return text.replace(HEADER_MARK, header(page)).replace(FOOTER_MARK, footer(page))


def not_found(path: str) -> str:
    """The "page not found" page for ``path``, with links to every page."""
    items = "".join(f'<li><a href="/{name}">{html.escape(title)}</a></li>' for name, (title, _) in PAGES.items())
    text = (STATIC_DIR / NOT_FOUND_FILE).read_text(encoding="utf-8")
    return (text.replace(HEADER_MARK, header(None)).replace(FOOTER_MARK, "")
            .replace("<!-- path -->", html.escape(path[:200])).replace("<!-- pages -->", items))


def wants_page(path: str, accept: str) -> bool:
    """True when a request for ``path`` comes from a browser window (it accepts HTML) and is not a
    machine resource: such a request for an unknown URL gets a page, not JSON."""
    return "text/html" in accept and not path.startswith(MACHINE_PREFIXES)
