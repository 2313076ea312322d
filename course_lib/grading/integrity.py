"""Tampering with the tests in a student's notebook: a static scan and the plan of the in-kernel guard.

A student's cells run in the same Python namespace as the hidden tests, so a notebook can make a
test pass without solving it: replace ``np.allclose`` or a reference function of ``course_lib``,
shadow a builtin the tests use, rebind a name a locked cell imported, or unhook IPython.

``scan_notebook`` reads every cell the student may edit, without running it, and lists what looks
like such tampering for the instructor to review. ``guard_plan`` describes the locked cells for
``course_lib.grading.guard``, which checks at run time, inside the kernel, that every test still
sees the objects the locked cells set up.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import symtable
from collections.abc import Iterator
from dataclasses import dataclass

from IPython.core.inputtransformer2 import TransformerManager
from nbformat import NotebookNode

# Names through which every cell reaches the builtins: assigning to their attributes changes
# `abs`, `len`, `isinstance`, ... for the tests too.
BUILTIN_MODULE_NAMES = frozenset({"builtins", "__builtins__"})

# The builtin names of plain Python: a notebook that binds one at the top level shadows it for
# every later cell, tests included.
BUILTIN_NAMES = frozenset(dir(builtins))

# Throwaway names: binding `_` (which IPython also sets to the last result) changes nothing a test relies on.
THROWAWAY_NAMES = frozenset({"_"})

# Names the guard's inserted checks look up (`__import__("course_lib.grading.guard", ...)`):
# a notebook that binds them could silence the checks.
GUARD_NAMES = frozenset({"__builtins__", "__import__"})

# Functions that run code built at run time or hand out namespaces (the notebook's, the
# caller's, IPython's): with them, a notebook can do what this scan cannot see.
REACHING_NAMES = frozenset(
    {"exec", "eval", "compile", "__import__", "globals", "locals", "vars", "get_ipython", "__builtins__"}
)

# Attributes that lead from an ordinary object to namespaces, frames, code or the class
# hierarchy, and so to objects the tests use.
REACHING_ATTRIBUTES = frozenset(
    {
        "__dict__",
        "__globals__",
        "__code__",
        "__builtins__",
        "__closure__",
        "__defaults__",
        "__kwdefaults__",
        "__subclasses__",
        "__bases__",
        "__mro__",
        "f_globals",
        "f_locals",
        "f_back",
        "tb_frame",
        "gi_frame",
    }
)

# Attributes of `sys` that change which modules imports return, inspect the running frames,
# trace execution or replace the interpreter's hooks.
REACHING_SYS_ATTRIBUTES = frozenset(
    {
        "modules",
        "_getframe",
        "settrace",
        "setprofile",
        "meta_path",
        "path_hooks",
        "excepthook",
        "displayhook",
        "addaudithook",
    }
)

# Modules (and their submodules) that give a notebook the interpreter's internals, IPython's
# and the kernel's machinery, or the grader itself.
FORBIDDEN_MODULES = (
    "builtins",
    "ctypes",
    "gc",
    "importlib",
    "inspect",
    "unittest.mock",
    "IPython",
    "ipykernel",
    "course_lib.grading",
)

# The statements that assign to (or delete) their targets, with the verb of the findings' reasons.
MUTATING_VERBS = {
    ast.Assign: "assigns to",
    ast.AnnAssign: "assigns to",
    ast.AugAssign: "modifies",
    ast.Delete: "deletes",
    ast.For: "assigns to",
    ast.AsyncFor: "assigns to",
    ast.With: "assigns to",
    ast.AsyncWith: "assigns to",
}


@dataclass(frozen=True)
class Finding:
    """One suspicious line of a cell the student may edit."""

    cell: str  # the cell's nbgrader grade_id, or "cell 7" (1-based index) for a cell without one
    line: int  # line number in that cell's source
    reason: str  # one sentence for the instructor


@dataclass(frozen=True)
class CodeCell:
    """A code cell of the notebook, parsed as IPython runs it (``tree`` is None if it does not parse)."""

    label: str
    source: str
    locked: bool
    graded: bool
    tree: ast.Module | None
    python: str  # the source with IPython syntax turned into Python


@dataclass(frozen=True)
class Imported:
    """What an import statement binds to a name: a module (``import a.b as x``) or a name of one."""

    module: str
    name: str | None = None  # for ``from module import name``

    def describe(self) -> str:
        """``the imported module numpy`` or ``course_lib.vocab.Vocabulary, imported from course_lib.vocab``"""
        if self.name is None:
            return f"the imported module {self.module}"
        return f"{self.module}.{self.name}, imported from {self.module}"


@dataclass(frozen=True)
class NotebookNames:
    """What the scan of an editable cell needs to know of the whole notebook."""

    imported: dict[str, Imported]  # every name an import binds, in any cell
    protected: dict[str, str]  # names an editable cell must not bind, each with why
    locked_imports: set[tuple[str, Imported]]  # (name, import) of the locked cells' imports


def scan_notebook(notebook: NotebookNode) -> list[Finding]:
    """Every line of the editable code cells that tampers, or could tamper, with the tests.

    Editable cells are the code cells nbgrader does not lock: solution cells and cells the
    student added. A cell that does not parse is skipped: it is graded as a syntax error.
    """
    cells = code_cells(notebook)
    names = NotebookNames(imported_names(cells), protected_names(cells), locked_imports(cells))
    findings: list[Finding] = []
    for cell in cells:
        if cell.locked or cell.tree is None:
            continue
        for node, reason in cell_problems(cell.tree, names):
            finding = Finding(cell.label, node.lineno, reason)
            if finding not in findings:
                findings.append(finding)
    return findings


def guard_plan(notebook: NotebookNode) -> dict:
    """What ``course_lib.grading.guard.install`` needs to know of the locked code cells, as JSON data.

    ``{"cells": {sha256 of the source: {"role": "test" | "locked", "binds": [...], "loads": [...]}}}``:
    ``binds`` are the names the cell binds at its top level, ``loads`` the names it reads
    without binding them itself. Pass the notebook as the grader runs it, locked cells restored.
    """
    plan: dict[str, dict] = {}
    for cell in code_cells(notebook):
        if not cell.locked:
            continue
        key = hashlib.sha256(cell.source.encode("utf-8")).hexdigest()
        binds = top_level_names(cell.tree) if cell.tree is not None else set()
        loads = global_loads(cell.python) - binds if cell.tree is not None else set()
        role = "test" if cell.graded or plan.get(key, {}).get("role") == "test" else "locked"
        plan[key] = {"role": role, "binds": sorted(binds), "loads": sorted(loads)}
    return {"cells": plan}


def code_cells(notebook: NotebookNode) -> list[CodeCell]:
    """The notebook's code cells with their nbgrader state, parsed after IPython's own transformations."""
    cells = []
    transformer = TransformerManager()
    for index, cell in enumerate(notebook.cells, start=1):
        if cell.cell_type != "code":
            continue
        nbgrader = cell.metadata.get("nbgrader", {})
        python = transformer.transform_cell(cell.source)
        try:
            tree = ast.parse(python)
        except (SyntaxError, ValueError):
            tree = None
        label = nbgrader.get("grade_id") or f"cell {index}"
        cells.append(
            CodeCell(
                label, cell.source, bool(nbgrader.get("locked")), bool(nbgrader.get("grade")), tree, python
            )
        )
    return cells


def imported_names(cells: list[CodeCell]) -> dict[str, Imported]:
    """Every name an import statement binds, anywhere in the notebook, with what it imports."""
    imported: dict[str, Imported] = {}
    for cell in cells:
        if cell.tree is not None:
            for node in ast.walk(cell.tree):
                if isinstance(node, ast.Import | ast.ImportFrom):
                    for name, what in import_bindings(node):
                        imported.setdefault(name, what)
    return imported


def import_bindings(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[str, Imported]]:
    """The names an import statement binds and what each one is (``from m import *`` binds none here)."""
    for alias in node.names:
        if isinstance(node, ast.Import) and alias.asname is None:
            top = alias.name.split(".")[0]
            yield top, Imported(top)
        elif isinstance(node, ast.Import):
            yield alias.asname, Imported(alias.name)
        elif alias.name != "*":
            yield alias.asname or alias.name, Imported("." * node.level + (node.module or ""), alias.name)


def protected_names(cells: list[CodeCell]) -> dict[str, str]:
    """Names an editable cell must not bind at its top level, each with why, as the end of a sentence."""
    protected = {name: "a name the grader's checks rely on" for name in GUARD_NAMES}
    for cell in cells:
        if not cell.locked or cell.tree is None:
            continue
        label = cell.label
        for name in global_loads(cell.python) & BUILTIN_NAMES:
            protected.setdefault(name, f"shadowing the builtin {name} that the locked cell {label} uses")
        for name in top_level_names(cell.tree) - THROWAWAY_NAMES:
            protected.setdefault(name, f"replacing the {name} of the locked cell {label} for the later tests")
    return protected


def locked_imports(cells: list[CodeCell]) -> set[tuple[str, Imported]]:
    """(name, import) of every top-level import of the locked cells: importing the same again is fine."""
    return {
        binding
        for cell in cells
        if cell.locked and cell.tree is not None
        for node, _ in module_scope_bindings(cell.tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for binding in import_bindings(node)
    }


def top_level_names(tree: ast.Module) -> set[str]:
    """The names a cell binds in the notebook's namespace."""
    return {name for _, name in module_scope_bindings(tree)}


def global_loads(python: str) -> set[str]:
    """The global (or builtin) names a cell reads, in its top level or inside its functions and classes."""
    loads: set[str] = set()
    tables = [symtable.symtable(python, "<cell>", "exec")]
    while tables:
        table = tables.pop()
        top_level = table.get_type() == "module"
        for symbol in table.get_symbols():
            if symbol.is_referenced() and (top_level or symbol.is_global()):
                loads.add(symbol.get_name())
        tables.extend(table.get_children())
    return loads


class ModuleScopeBindings(ast.NodeVisitor):
    """Collects (node, name) for each name bound in the module scope, not inside functions or classes."""

    def __init__(self) -> None:
        self.bindings: list[tuple[ast.AST, str]] = []

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.bindings.append((node, node.name))
        for child in [*node.decorator_list, *node.args.defaults, *node.args.kw_defaults]:
            if child is not None:
                self.visit(child)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.bindings.append((node, node.name))
        for child in [*node.decorator_list, *node.bases, *node.keywords]:
            self.visit(child)

    def visit_Lambda(self, node: ast.Lambda) -> None:
        for child in [*node.args.defaults, *node.args.kw_defaults]:
            if child is not None:
                self.visit(child)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        """The loop variables of a comprehension are its own; a walrus in it binds in the module."""
        for child in [node.iter, *node.ifs]:
            self.visit(child)

    def visit_Name(self, node: ast.Name) -> None:
        if isinstance(node.ctx, ast.Store):
            self.bindings.append((node, node.id))

    def visit_Import(self, node: ast.Import | ast.ImportFrom) -> None:
        self.bindings.extend((node, name) for name, _ in import_bindings(node))

    visit_ImportFrom = visit_Import

    def visit_ExceptHandler(self, node: ast.ExceptHandler) -> None:
        if node.name:
            self.bindings.append((node, node.name))
        self.generic_visit(node)

    def visit_MatchAs(self, node: ast.MatchAs | ast.MatchStar) -> None:
        if node.name:
            self.bindings.append((node, node.name))
        self.generic_visit(node)

    visit_MatchStar = visit_MatchAs

    def visit_MatchMapping(self, node: ast.MatchMapping) -> None:
        if node.rest:
            self.bindings.append((node, node.rest))
        self.generic_visit(node)


def module_scope_bindings(tree: ast.Module) -> list[tuple[ast.AST, str]]:
    """(node, name) for each binding of the cell's top level, including inside if/for/while/with/try."""
    visitor = ModuleScopeBindings()
    visitor.visit(tree)
    return visitor.bindings


def cell_problems(tree: ast.Module, names: NotebookNames) -> Iterator[tuple[ast.AST, str]]:
    """(node, reason) for every tampering, or tool for tampering, in one editable cell."""
    yield from shadowing_bindings(tree, names)
    sys_names = {name for name, what in names.imported.items() if what == Imported("sys")}
    for node in ast.walk(tree):
        yield from module_mutations(node, names.imported)
        yield from reaching_uses(node, sys_names)


def shadowing_bindings(tree: ast.Module, names: NotebookNames) -> Iterator[tuple[ast.AST, str]]:
    """Top-level bindings of names the locked cells use; repeating a locked cell's import is fine."""
    for node, name in module_scope_bindings(tree):
        if name not in names.protected:
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            if (name, dict(import_bindings(node))[name]) in names.locked_imports:
                continue
        yield node, f"binds {name} at the top level of the cell, {names.protected[name]}"


def module_mutations(node: ast.AST, imported: dict[str, Imported]) -> Iterator[tuple[ast.AST, str]]:
    """Assignments, deletions and setattr/delattr calls that change an imported module or the builtins."""
    if (is_call_to(node, "setattr") or is_call_to(node, "delattr")) and node.args:
        owner = owner_of(node.args[0], imported)
        if owner:
            yield node, f"calls {node.func.id} on {ast.unparse(node.args[0])}, {owner}"
        return
    verb = MUTATING_VERBS.get(type(node))
    if verb is None:
        return
    for target in assignment_targets(node):
        for part in ast.walk(target):
            if isinstance(part, ast.Attribute | ast.Subscript) and isinstance(part.ctx, ast.Store | ast.Del):
                owner = owner_of(part, imported)
                where = "an attribute of" if isinstance(part, ast.Attribute) else "an item inside"
                if owner:
                    yield part, f"{verb} {ast.unparse(part)}, {where} {owner}"


def assignment_targets(node: ast.AST) -> list[ast.AST]:
    """The expressions a statement of ``MUTATING_VERBS`` assigns to or deletes."""
    if isinstance(node, ast.Assign | ast.Delete):
        return node.targets
    if isinstance(node, ast.With | ast.AsyncWith):
        return [item.optional_vars for item in node.items if item.optional_vars is not None]
    return [node.target]


def owner_of(expression: ast.AST, imported: dict[str, Imported]) -> str | None:
    """What the expression belongs to when it is rooted at the builtins or at an imported name, else None.

    ``np.testing.__dict__["x"]`` and ``getattr(np, "testing").x`` are rooted at ``np``.
    """
    while True:
        if isinstance(expression, ast.Attribute | ast.Subscript):
            expression = expression.value
        elif is_call_to(expression, "getattr") and expression.args:
            expression = expression.args[0]
        else:
            break
    if not isinstance(expression, ast.Name):
        return None
    if expression.id in BUILTIN_MODULE_NAMES:
        return "the builtins, where every cell finds names like abs and len"
    if expression.id in imported:
        return imported[expression.id].describe()
    return None


def is_call_to(node: ast.AST, function: str) -> bool:
    """Whether the node calls the plain name ``function``."""
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == function


def reaching_uses(node: ast.AST, sys_names: set[str]) -> Iterator[tuple[ast.AST, str]]:
    """Uses of the names, attributes and modules that reach around this scan."""
    if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and node.id in REACHING_NAMES:
        yield node, f"uses {node.id}, which can run code or change namespaces out of this scan's sight"
    elif isinstance(node, ast.Attribute) and node.attr in REACHING_ATTRIBUTES:
        yield node, f"uses the attribute {node.attr}, which reaches into namespaces, frames or code"
    elif isinstance(node, ast.Attribute) and node.attr in REACHING_SYS_ATTRIBUTES:
        if isinstance(node.value, ast.Name) and node.value.id in sys_names:
            yield node, f"uses sys.{node.attr}, which can change what imports return or how code runs"
    elif isinstance(node, ast.Import | ast.ImportFrom):
        yield from reaching_imports(node)


def reaching_imports(node: ast.Import | ast.ImportFrom) -> Iterator[tuple[ast.AST, str]]:
    """Star imports, and imports of ``FORBIDDEN_MODULES`` or of the ``REACHING_SYS_ATTRIBUTES``."""
    if isinstance(node, ast.Import):
        modules = [alias.name for alias in node.names]
    elif node.level:
        return
    else:
        modules = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        if any(alias.name == "*" for alias in node.names):
            yield (
                node,
                (
                    f"imports every public name of {node.module} with `from {node.module} import *`, "
                    "which can shadow builtins and names the tests use"
                ),
            )
    for module in modules:
        if any(module == forbidden or module.startswith(forbidden + ".") for forbidden in FORBIDDEN_MODULES):
            yield node, f"imports {module}, which reaches into the interpreter, IPython or the grader"
            return
        if module.startswith("sys.") and module.removeprefix("sys.") in REACHING_SYS_ATTRIBUTES:
            yield node, f"imports {module}, which can change what imports return or how code runs"
