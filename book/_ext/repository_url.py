"""``{{ repository_url }}`` in a page's source: the course repository's address from ``_config.yml``.

The address is set once, as ``repository: url:`` in ``_config.yml`` (Jupyter Book passes it to
the theme as ``repository_url``); the pages that tell how to install or clone the course
write ``{{ repository_url }}``, code blocks included, and show the address the instructor set.
"""

from __future__ import annotations

from sphinx.application import Sphinx
from sphinx.errors import ConfigError

PLACEHOLDER = "{{ repository_url }}"


def repository_url(app: Sphinx) -> str:
    url = (app.config.html_theme_options or {}).get("repository_url", "")
    if not url:
        raise ConfigError("set `repository: url:` in _config.yml (book/instructor.md explains how)")
    return url.rstrip("/")


def substitute(app: Sphinx, docname: str, source: list[str]) -> None:
    if PLACEHOLDER in source[0]:
        source[0] = source[0].replace(PLACEHOLDER, repository_url(app))


def setup(app: Sphinx) -> dict:
    app.connect("source-read", substitute)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
