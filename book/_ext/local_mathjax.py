"""Serve MathJax from the built site instead of a CDN, so pages render offline.

MathJax 3 ships inside the pinned PyPI package ``django-static-mathjax``. The
self-contained ``tex-svg-full.js`` bundle (TeX input, SVG output, fonts embedded)
is copied to ``_static/mathjax/``; ``mathjax_path`` in ``_config.yml`` points at it.
"""

from __future__ import annotations

import shutil
from importlib import resources
from pathlib import Path

from sphinx.application import Sphinx

BUNDLE = "tex-svg-full.js"


def _bundle_path() -> Path:
    try:
        es5 = resources.files("mathjax") / "static" / "mathjax" / "es5"
    except ModuleNotFoundError as error:
        raise RuntimeError(
            "MathJax is missing: install the pinned requirements (pip install -r requirements.txt), "
            "which include django-static-mathjax"
        ) from error
    bundle = Path(str(es5 / BUNDLE))
    if not bundle.is_file():
        raise RuntimeError(f"MathJax bundle {bundle} is missing: reinstall django-static-mathjax")
    return bundle


def _copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    target = Path(app.outdir) / "_static" / "mathjax"
    target.mkdir(parents=True, exist_ok=True)
    shutil.copy2(_bundle_path(), target / BUNDLE)


def setup(app: Sphinx) -> dict:
    _bundle_path()
    app.connect("build-finished", _copy_mathjax)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
