"""Alt text for the figures that notebook cells draw.

myst-nb turns every image output of a code cell (a matplotlib figure, say) into an ``<img>``
whose alt text is, by default, the image's file name, which tells a screen reader nothing.
This extension gives each such image a description, in this order of preference:

1. an alt text the author set: myst-nb's cell metadata ``{"mystnb": {"image": {"alt": "..."}}}``
   (one text for every image of the cell), or this extension's cell metadata
   ``{"figure_alt": "..."}`` or ``{"figure_alt": ["first figure", "second figure"]}``
   (one text per image, in the order the cell draws them);
2. a description read from the cell's code: the kind of plot, its title, what is plotted
   against what (the axis labels) and the names of the curves, from the calls to the
   course's plotting helpers (``course_lib.plotting``) and to matplotlib
   (``subplots``, ``set_title``, ``set_xlabel``, ``suptitle``, ``plt.show``...);
3. otherwise a generic text naming the cell that drew the figure.

An image outside code cells (Markdown ``![alt](path)``) must carry its own alt text: one
without it is reported as a warning, which fails the build (``--warningiserror``).
"""

from __future__ import annotations

import ast
import inspect
import json
import re
from contextlib import suppress
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

# Matplotlib calls that start a new figure, end the current one, or label the current axes.
NEW_FIGURE = {"figure", "subplots", "subplot_mosaic"}
END_FIGURE = {"show", "savefig", "close"}
TITLE = {"set_title", "title"}
XLABEL = {"set_xlabel", "xlabel"}
YLABEL = {"set_ylabel", "ylabel"}
# Plain matplotlib drawing calls and the kind of plot each one makes.
DRAWING = {
    "plot": "line plot",
    "semilogy": "line plot",
    "semilogx": "line plot",
    "loglog": "line plot",
    "scatter": "scatter plot",
    "bar": "bar chart",
    "barh": "bar chart",
    "hist": "histogram",
    "imshow": "image",
    "matshow": "heat map",
    "pcolormesh": "heat map",
    "contourf": "contour plot",
}


@cache
def plotting_helpers() -> dict[str, inspect.Signature]:
    """The course's plotting helpers that take axis labels, by name, with their signatures."""
    try:
        from course_lib import plotting
    except ImportError:
        return {}
    helpers = {}
    for name, function in vars(plotting).items():
        if name.startswith("_") or not inspect.isfunction(function):
            continue
        signature = inspect.signature(function)
        if {"xlabel", "ylabel"} <= set(signature.parameters):
            helpers[name] = signature
    return helpers


@dataclass
class Panel:
    kind: str
    title: str = ""
    xlabel: str = ""
    ylabel: str = ""
    series: list[str] = field(default_factory=list)

    def describe(self) -> str:
        text = self.kind[:1].upper() + self.kind[1:]
        if self.title:
            text += f" titled “{self.title}”"
        if self.ylabel and self.xlabel:
            text += f": {self.ylabel} against {self.xlabel}"
        elif self.ylabel or self.xlabel:
            text += f": {self.ylabel or self.xlabel}"
        if len(self.series) > 1:
            text += ", one curve each for " + ", ".join(self.series)
        return text


@dataclass
class Figure:
    axes: int | None = None  # number of panels, when the code says it with constants
    title: str = ""
    panels: list[Panel] = field(default_factory=list)

    def describe(self) -> str:
        prefix = f"“{self.title}”. " if self.title else ""
        panels = [panel.describe() for panel in self.panels]
        count = max(self.axes or 1, len(panels))
        if count == 1:
            return prefix + panels[0] + "."
        if len(panels) == 1:
            return f"{prefix}Figure with {count} panels, each a {panels[0][:1].lower()}{panels[0][1:]}."
        described = "; ".join(f"panel {number}: {text}" for number, text in enumerate(panels, start=1))
        return f"{prefix}Figure with {count} panels. {described[:1].upper()}{described[1:]}."


def plain_text(node: ast.expr | None) -> str:
    """The text of a string literal (f-strings: their literal parts), TeX markup removed."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        text = node.value
    elif isinstance(node, ast.JoinedStr):
        parts = [part.value if isinstance(part, ast.Constant) else "…" for part in node.values]
        text = "".join(parts)
        if not text.replace("…", "").strip():
            return ""
    else:
        return ""
    text = text.replace("$", "")
    text = re.sub(r"\\(?:mathrm|mathbf|text|operatorname)\{([^}]*)\}", r"\1", text)
    text = re.sub(r"\\([A-Za-z]+)", r"\1", text)
    text = re.sub(r"\\(?=[^A-Za-z])", "", text)  # escaped symbols: \| is |
    return " ".join(text.split())


def call_name(call: ast.Call) -> str:
    function = call.func
    if isinstance(function, ast.Attribute):
        return function.attr
    if isinstance(function, ast.Name):
        return function.id
    return ""


def bound_arguments(call: ast.Call, signature: inspect.Signature) -> dict[str, ast.expr]:
    parameters = [name for name, parameter in signature.parameters.items()
                  if parameter.kind in (parameter.POSITIONAL_ONLY, parameter.POSITIONAL_OR_KEYWORD)]
    arguments = dict(zip(parameters, call.args, strict=False))
    arguments.update({keyword.arg: keyword.value for keyword in call.keywords if keyword.arg})
    return arguments


def series_names(node: ast.expr | None) -> list[str]:
    """The curve names of a ``{"name": values, ...}`` literal."""
    if isinstance(node, ast.Dict):
        names = [plain_text(key) for key in node.keys]
        if all(names):
            return names
    return []


def subplot_count(call: ast.Call) -> int | None:
    """How many panels ``plt.subplots(nrows, ncols)`` makes (None: not a constant)."""
    if call_name(call) != "subplots":
        return 1
    shape: dict[str, ast.expr] = dict(zip(("nrows", "ncols"), call.args, strict=False))
    shape.update({keyword.arg: keyword.value for keyword in call.keywords
                  if keyword.arg in ("nrows", "ncols")})
    count = 1
    for value in shape.values():
        if not (isinstance(value, ast.Constant) and isinstance(value.value, int)):
            return None
        count *= value.value
    return count


def receiver(call: ast.Call) -> str:
    """The object a method is called on, as written (``ax``, ``axes[0]``); "" for a function."""
    if isinstance(call.func, ast.Attribute):
        return ast.unparse(call.func.value)
    return ""


def assigned_names(tree: ast.AST) -> dict[int, list[str]]:
    """For each call whose result is assigned (``ax = line_plot(...)``): the names it gets."""
    names: dict[int, list[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            names[id(node.value)] = [ast.unparse(target) for target in node.targets]
    return names


def figures_in_code(source: str) -> list[Figure]:
    """The figures a cell's code draws, in order, as far as its literals tell.

    Panels are told apart by the name of their axes (``ax=left``, ``right.set_title``);
    calls on ``plt`` go to the figure's latest panel.
    """
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return []
    calls = sorted((node for node in ast.walk(tree) if isinstance(node, ast.Call)),
                   key=lambda call: (call.lineno, call.col_offset))
    assigned = assigned_names(tree)
    helpers = plotting_helpers()
    figures: list[Figure] = []
    current: Figure | None = None
    named: dict[str, Panel] = {}  # the current figure's panels by the names of their axes

    def new_figure(axes: int | None) -> Figure:
        nonlocal current
        current = Figure(axes=axes)
        figures.append(current)
        named.clear()
        return current

    def panel(axes: str, kind: str) -> Panel:
        """The panel drawn on ``axes`` (a new one if that name is new)."""
        figure = current or new_figure(None)
        if axes in ("", "plt", "pyplot") and figure.panels:
            return figure.panels[-1]
        if axes not in named:
            named[axes] = Panel(kind)
            figure.panels.append(named[axes])
        return named[axes]

    for call in calls:
        name, axes = call_name(call), receiver(call)
        if name in NEW_FIGURE:
            new_figure(subplot_count(call))
        elif name in END_FIGURE:
            current = None
        elif name in helpers:
            arguments = bound_arguments(call, helpers[name])
            if "ax" not in arguments:
                new_figure(1)
            kind = name.removesuffix("_plot").replace("_", " ")
            drawn = Panel(
                {"bar": "bar chart"}.get(kind, f"{kind} plot"),
                title=plain_text(arguments.get("title")),
                xlabel=plain_text(arguments.get("xlabel")),
                ylabel=plain_text(arguments.get("ylabel")),
                series=series_names(arguments.get("series")),
            )
            current.panels.append(drawn)
            for alias in [ast.unparse(arguments["ax"])] if "ax" in arguments else []:
                named[alias] = drawn
            for alias in assigned.get(id(call), []):
                named[alias] = drawn
        elif name == "suptitle" and call.args:
            (current or new_figure(None)).title = plain_text(call.args[0])
        elif name in TITLE | XLABEL | YLABEL and call.args:
            text = plain_text(call.args[0])
            if text:
                field_name = "title" if name in TITLE else "xlabel" if name in XLABEL else "ylabel"
                setattr(panel(axes, "plot"), field_name, text)
        elif name in DRAWING and axes:
            drawn = panel(axes, DRAWING[name])
            if drawn.kind == "plot":
                drawn.kind = DRAWING[name]
    return [figure for figure in figures if figure.panels]


def author_alts(metadata: dict) -> list[str] | str | None:
    alt = metadata.get("figure_alt")
    if isinstance(alt, str) and alt.strip():
        return alt.strip()
    if isinstance(alt, list) and all(isinstance(text, str) and text.strip() for text in alt):
        return [text.strip() for text in alt]
    return None


def cell_source(app: Sphinx, cell: nodes.Element) -> str:
    """The code of a notebook cell: as shown on the page, else (input removed) from the notebook."""
    for block in cell.findall(nodes.literal_block):
        parent = block.parent
        if isinstance(parent, nodes.container) and parent.get("nb_element") == "cell_code_source":
            return block.astext()
    path = app.env.doc2path(app.env.docname)
    index = cell.get("cell_index")
    if str(path).endswith(".ipynb") and isinstance(index, int):
        with suppress(OSError, ValueError, IndexError, KeyError):
            source = json.loads(Path(path).read_text(encoding="utf-8"))["cells"][index]["source"]
            return "".join(source) if isinstance(source, list) else source
    return ""


def add_alt_text(app: Sphinx, doctree: nodes.document) -> None:
    docname = app.env.docname
    in_cells: set[int] = set()
    for cell in doctree.findall(nodes.container):
        if cell.get("nb_element") != "cell_code":
            continue
        images = list(cell.findall(nodes.image))
        if not images:
            continue
        in_cells.update(id(image) for image in images)
        missing = {id(image) for image in images if not image.get("alt", "").strip()}
        if not missing:
            continue
        number = cell.get("cell_index", 0) + 1
        authored = author_alts(cell.get("cell_metadata") or {})
        described = [figure.describe() for figure in figures_in_code(cell_source(app, cell))]
        for position, image in enumerate(images):
            if id(image) not in missing:
                continue
            if isinstance(authored, str):
                alt = authored
            elif authored and position < len(authored):
                alt = authored[position]
            elif position < len(described):
                alt = described[position]
            else:
                alt = f"Figure drawn by cell {number} of this page (its code is shown above the figure)."
            image["alt"] = alt
    for image in doctree.findall(nodes.image):
        if id(image) not in in_cells and not image.get("alt", "").strip():
            logger.warning("image %s has no alt text: write ![what it shows](path)", image.get("uri"),
                           location=(docname, image.line), type="figure_alt")


def setup(app: Sphinx) -> dict:
    app.connect("doctree-read", add_alt_text)
    # A new version of this file changes the doctrees: bumping env_version re-reads every page
    # (from the execution cache, without running the notebooks).
    return {"version": "1", "env_version": 2, "parallel_read_safe": True, "parallel_write_safe": True}
