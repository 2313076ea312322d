"""Write each script of a page once.

Sphinx 7.4 keeps two copies of an inline script that an extension adds with
``app.add_js_file(None, body=...)`` once the builder exists: one named ``None`` and one named
``""``. sphinx-thebe and sphinx-togglebutton add their settings that way, so every page
declared ``const THEBE_JS_URL`` twice, and the browser stopped on the second declaration
(``SyntaxError: Identifier 'THEBE_JS_URL' has already been declared``). This extension drops
the second copy of any script from the page, keeping the first in its place.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _key(script) -> tuple:
    attributes = getattr(script, "attributes", {}) or {}
    return (getattr(script, "filename", script) or "", *sorted(attributes.items()))


def drop_duplicate_scripts(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique


def setup(app: Sphinx) -> dict:
    # After every other extension has added its scripts to the page (default priority: 500).
    app.connect("html-page-context", drop_duplicate_scripts, priority=900)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
