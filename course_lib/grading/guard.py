"""Inside the kernel that grades a notebook: every test must run against the objects the course set up.

The grader starts the kernel with ``install(plan_path)``, the plan being
``course_lib.grading.integrity.guard_plan`` of the notebook as JSON. ``install`` takes a
snapshot of the builtins and of the functions, classes and submodules of the watched modules
(a module imported later, as soon as its import has run). Before each cell runs, the plan tells
which locked cell it is, by the sha256 of its source. Each test cell gets a check as its first
and as its last statement; after each locked cell, the guard records the objects the cell
bound. A check raises ``TamperingError`` when

* an attribute of a watched module, or a builtin, is no longer the object of the snapshot;
* a name the test reads is no longer the object a locked cell bound to it, or shadows a builtin
  the test uses when no locked cell bound it.

Before raising, the check puts the snapshot's objects and the locked cells' bindings back, so
the tests after it run on the course's objects again: the tampering costs the test that
caught it, and any later test during which the notebook changes them again.

The checks compare identities only: one costs a fraction of a millisecond. ``install``
deletes the plan once read: the notebook cannot learn from it which cells are tests.
"""

from __future__ import annotations

import ast
import builtins
import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from importlib.abc import Loader, MetaPathFinder
from importlib.machinery import ModuleSpec
from types import ModuleType

from IPython import get_ipython
from IPython.core.error import InputRejected
from IPython.core.interactiveshell import ExecutionInfo, ExecutionResult, InteractiveShell

# Modules the tests compare with, besides the course's own (COURSE_PACKAGE).
WATCHED_MODULES = frozenset(
    {"math", "numpy", "numpy.testing", "torch", "torch.testing", "torch.nn.functional"}
)
# Packages whose own imports may change the watched modules, as libraries do (see Guard.import_finished).
WATCHED_PACKAGES = frozenset({"math", "numpy", "torch", "course_lib"})
# Every module of this package is watched, except the grader's own modules.
COURSE_PACKAGE = "course_lib"
GRADER_PACKAGE = "course_lib.grading"
# Builtins that IPython (its BuiltinTrap, its display hook) and ipykernel (`input`) swap around every cell.
IPYTHON_BUILTINS = frozenset({"exit", "quit", "get_ipython", "input", "_", "__", "___"})
# The statement inserted in test cells: it needs no name of the notebook's namespace.
CHECK_STATEMENT = "__import__({module!r}, fromlist=['check']).check({moment!r})"
BEFORE_TEST = "before this test ran"
DURING_TEST = "while this test ran"
MISSING = object()  # what a namespace holds for a name it does not bind

_guard: Guard | None = None


class TamperingError(InputRejected):
    """The notebook changed an object a test relies on, so the test's result cannot be trusted.

    An ``InputRejected``: IPython reports it as the cell's error when the check raising it runs
    before the cell, and keeps the guard registered.
    """


def install(plan_path: str) -> None:
    """Guard the tests of the notebook that the running IPython shell is about to run.

    ``plan_path`` is a JSON file written from ``integrity.guard_plan(notebook)``. A second call
    replaces the first one's guard.
    """
    global _guard
    shell = get_ipython()
    if shell is None:
        raise RuntimeError("course_lib.grading.guard.install must run inside an IPython kernel or shell")
    with open(plan_path, encoding="utf-8") as file:
        plan = json.load(file)
    os.remove(plan_path)
    uninstall()
    _guard = Guard(shell, plan["cells"])
    _guard.start()


def uninstall() -> None:
    """Remove the installed guard, if any, from the shell and from ``sys.meta_path``."""
    global _guard
    if _guard is not None:
        _guard.stop()
        _guard = None


def check(moment: str) -> None:
    """Raise ``TamperingError`` if the running test cannot be trusted; the inserted statements call it."""
    if _guard is not None:
        _guard.check(moment)


def is_watched_module(name: str) -> bool:
    """Whether the guard takes a snapshot of the module: ``WATCHED_MODULES`` and the course's modules."""
    if name == GRADER_PACKAGE or name.startswith(GRADER_PACKAGE + "."):
        return False
    return name in WATCHED_MODULES or name == COURSE_PACKAGE or name.startswith(COURSE_PACKAGE + ".")


def is_library_module(name: str) -> bool:
    """Whether the module belongs to a package of the watched modules, whose imports may change them."""
    if name == GRADER_PACKAGE or name.startswith(GRADER_PACKAGE + "."):
        return False
    return name.partition(".")[0] in WATCHED_PACKAGES


def is_watched_value(value: object) -> bool:
    """Functions, classes and other callables, descriptors (properties, methods of classes) and modules."""
    return callable(value) or hasattr(type(value), "__get__") or isinstance(value, ModuleType)


class WatchedNamespace:
    """A live namespace (a module's or a class's) and what it held at the guard's snapshot."""

    def __init__(
        self, label: str, namespace: Mapping[str, object], ignored: frozenset[str], owner: object = None
    ) -> None:
        self.label = label
        self.namespace = namespace
        self.owner = owner  # the class whose read-only namespace this is; None for a module's dict
        self.ignored = ignored
        self.values: dict[str, object] = {}  # the watched values
        self.names: set[str] = set()  # every name, watched or not
        self.take_snapshot()

    def take_snapshot(self, keep: Iterable[str] = ()) -> None:
        """Snapshot the namespace as it is now, except the changed names in ``keep``: they stay changed."""
        values = {
            name: value
            for name, value in self.namespace.items()
            if name not in self.ignored and is_watched_value(value)
        }
        names = set(self.namespace)
        for name in keep:
            if name in self.values:
                values[name] = self.values[name]
            else:
                values.pop(name, None)
                names.discard(name)
        self.values, self.names = values, names

    def restore(self) -> None:
        """Put the snapshot's values back and remove the watched values added since."""
        for name, change in self.changes().items():
            if change == "added":
                self._set(name, MISSING)
            else:
                self._set(name, self.values[name])

    def _set(self, name: str, value: object) -> None:
        if self.owner is None:
            if value is MISSING:
                self.namespace.pop(name, None)
            else:
                self.namespace[name] = value
        elif value is MISSING:
            delattr(self.owner, name)
        else:
            setattr(self.owner, name, value)

    def changes(self) -> dict[str, str]:
        """Changed names, each with what happened to it: replaced, deleted, or added (a watched value)."""
        changes = {}
        for name, value in self.values.items():
            now = self.namespace.get(name, MISSING)
            if now is not value:
                changes[name] = "deleted" if now is MISSING else "replaced"
        if len(self.namespace) != len(self.names):
            for name in self.namespace.keys() - self.names - self.ignored:
                value = self.namespace[name]
                if is_watched_value(value) and sys.modules.get(f"{self.label}.{name}") is not value:
                    changes[name] = "added"
        return changes


class Guard:
    """The snapshots, the objects the locked cells bound and the plan entry of the running cell."""

    def __init__(self, shell: InteractiveShell, cells: dict[str, dict]) -> None:
        self.shell = shell
        self.cells = cells
        self.cell: dict | None = None  # the plan entry of the running cell, None for a cell not in the plan
        self.bound: dict[str, object] = {}  # name -> what the last locked cell binding it left there
        self.watched: dict[str, WatchedNamespace] = {}
        self.imports_running = 0  # nested imports of library modules under way
        self.changed_before_import: dict[str, dict[str, str]] = {}
        self.finder = SnapshotFinder(self)
        self.inserter = CheckInserter(self)
        self.route: dict[str, tuple[object, Callable[[], object]]] = {}

    def start(self) -> None:
        """Take the snapshots, hook imports and register with the shell."""
        self.watch("builtins", vars(builtins), ignored=IPYTHON_BUILTINS)
        for name, module in list(sys.modules.items()):
            if is_watched_module(name) and isinstance(module, ModuleType):
                self.watch_module(module)
        sys.meta_path.insert(0, self.finder)
        self.shell.events.register("pre_run_cell", self.before_cell)
        self.shell.events.register("post_run_cell", self.after_cell)
        self.shell.ast_transformers.append(self.inserter)
        self.route = self.route_now()

    def stop(self) -> None:
        """Undo ``start``: the snapshots stay with this object."""
        if self.finder in sys.meta_path:
            sys.meta_path.remove(self.finder)
        for event, callback in (("pre_run_cell", self.before_cell), ("post_run_cell", self.after_cell)):
            if callback in self.shell.events.callbacks[event]:
                self.shell.events.unregister(event, callback)
        if self.inserter in self.shell.ast_transformers:
            self.shell.ast_transformers.remove(self.inserter)

    def watch(
        self,
        label: str,
        namespace: Mapping[str, object],
        ignored: frozenset[str] = frozenset(),
        owner: object = None,
    ) -> None:
        """Snapshot ``namespace`` (a live mapping; a class's needs its ``owner``) under ``label``."""
        self.watched[label] = WatchedNamespace(label, namespace, ignored, owner)

    def watch_module(self, module: ModuleType) -> None:
        """Snapshot a watched module; for ``torch``, also ``torch.Tensor``'s own attributes."""
        self.watch(module.__name__, vars(module))
        if module.__name__ == "torch":
            self.watch("torch.Tensor", vars(module.Tensor), owner=module.Tensor)

    def import_started(self) -> None:
        """Before a library module runs: note what the notebook changed already, so the import hides none."""
        if self.imports_running == 0:
            self.changed_before_import = {label: watched.changes() for label, watched in self.watched.items()}
        self.imports_running += 1

    def import_finished(self, module: ModuleType | None) -> None:
        """After a library module ran: snapshot it if watched; after the outermost import, snapshot again.

        Libraries change each other when imported (``import torch._dynamo`` wraps ``torch.manual_seed``):
        those changes become the reference, while what the notebook changed before stays a change.
        """
        self.imports_running -= 1
        if module is not None and is_watched_module(module.__name__):
            self.watch_module(module)
        if self.imports_running == 0:
            for label, watched in self.watched.items():
                watched.take_snapshot(keep=self.changed_before_import.get(label, {}))

    def route_now(self) -> dict[str, tuple[object, Callable[[], object]]]:
        """What the inserted checks and IPython's transformations go through, each with how to read it."""
        namespace = self.shell.user_ns
        readers = {
            "the name __import__ of the notebook": lambda: namespace.get("__import__", MISSING),
            "the notebook's __builtins__": lambda: namespace.get("__builtins__", MISSING),
            "builtins.__import__": lambda: vars(builtins).get("__import__", MISSING),
            f"sys.modules[{__name__!r}]": lambda: sys.modules.get(__name__, MISSING),
            f"{__name__}.check": lambda: vars(sys.modules[__name__]).get("check", MISSING),
            "IPython's input transformers": lambda: tuple(self.shell.input_transformers_cleanup),
            "IPython's later input transformers": lambda: tuple(self.shell.input_transformers_post),
            "IPython's AST transformers": lambda: tuple(self.shell.ast_transformers),
        }
        return {what: (read(), read) for what, read in readers.items()}

    def before_cell(self, info: ExecutionInfo) -> None:
        """Find the cell in the plan; put the check inserter back if the notebook removed it."""
        self.cell = self.cells.get(hashlib.sha256(info.raw_cell.encode("utf-8")).hexdigest())
        if self.inserter not in self.shell.ast_transformers:
            self.shell.ast_transformers.append(self.inserter)

    def after_cell(self, result: ExecutionResult) -> None:
        """After a locked cell, record what it left bound to the names it binds."""
        if self.cell is not None:
            namespace = self.shell.user_ns
            for name in self.cell["binds"]:
                self.bound[name] = namespace.get(name, MISSING)
        self.cell = None

    def check_route(self) -> None:
        """Raise ``TamperingError`` if the inserted checks would miss this guard, or IPython was rewired."""
        changed = [what for what, (value, read) in self.route.items() if not same(read(), value)]
        if changed:
            raise TamperingError(
                f"The notebook changed {', '.join(changed)} before this test ran, so this "
                "test cannot be trusted. Remove the code that changes them and run the "
                "notebook again."
            )

    def check(self, moment: str) -> None:
        """Raise ``TamperingError`` if a watched object or a name the running test reads was changed."""
        problems = self.changed_attributes() + self.changed_names()
        if problems:
            self.restore()
            raise TamperingError(
                f"The notebook changed what this test relies on {moment}: "
                f"{'; '.join(problems)}. This test cannot be trusted: remove the code that "
                "changes them and run the notebook again. (The grader put the originals "
                "back for the next tests.)"
            )

    def restore(self) -> None:
        """Put back the watched objects and the names the running test reads, as the course set them up."""
        for watched in self.watched.values():
            watched.restore()
        namespace = self.shell.user_ns
        for name in self.cell["loads"] if self.cell is not None else ():
            if name in self.bound:
                if self.bound[name] is MISSING:
                    namespace.pop(name, None)
                else:
                    namespace[name] = self.bound[name]
            elif name in self.watched["builtins"].values:
                namespace.pop(name, None)

    def changed_attributes(self) -> list[str]:
        """``numpy.allclose was replaced``, ... for every watched object no longer in place."""
        return [
            f"{label}.{name} was {change}"
            for label, watched in self.watched.items()
            for name, change in watched.changes().items()
        ]

    def changed_names(self) -> list[str]:
        """Names the running test reads that no longer hold what locked cells bound, or shadow a builtin."""
        problems = []
        namespace = self.shell.user_ns
        builtin_names = self.watched["builtins"].values
        for name in self.cell["loads"] if self.cell is not None else ():
            now = namespace.get(name, MISSING)
            if name in self.bound and now is not self.bound[name]:
                problems.append(f"{name} was rebound, it is no longer the object a locked cell bound to it")
            elif name not in self.bound and name in builtin_names and now is not MISSING:
                problems.append(f"the builtin {name} was shadowed by a name of the notebook")
        return problems


def same(now: object, then: object) -> bool:
    """Identity, item by item for the tuples of transformers."""
    if isinstance(now, tuple) and isinstance(then, tuple):
        return len(now) == len(then) and all(a is b for a, b in zip(now, then, strict=True))
    return now is then


class CheckInserter(ast.NodeTransformer):
    """IPython's AST transformer: in a test cell, a check first and a check last."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def visit_Module(self, node: ast.Module) -> ast.Module:
        """Insert the checks; the last goes before a final expression, so IPython still shows its value."""
        cell = self.guard.cell
        if cell is None or cell["role"] != "test" or not node.body:
            return node
        self.guard.check_route()
        last = node.body[-1]
        node.body.insert(0, check_statement(BEFORE_TEST, node.body[0]))
        if isinstance(last, ast.Expr):
            node.body.insert(len(node.body) - 1, check_statement(DURING_TEST, last))
        else:
            node.body.append(check_statement(DURING_TEST, last))
        return node


def check_statement(moment: str, neighbour: ast.stmt) -> ast.stmt:
    """The statement calling ``check(moment)``, at the neighbour's location so line numbers do not move."""
    statement = ast.parse(CHECK_STATEMENT.format(module=__name__, moment=moment)).body[0]
    for part in ast.walk(statement):
        ast.copy_location(part, neighbour)
    return statement


class SnapshottingLoader:
    """A library module's loader that tells the guard when the module runs; all else is the loader's."""

    def __init__(self, loader: Loader, guard: Guard) -> None:
        self.loader = loader
        self.guard = guard

    def create_module(self, spec: ModuleSpec) -> ModuleType | None:
        """The loader's module."""
        return self.loader.create_module(spec)

    def exec_module(self, module: ModuleType) -> None:
        """Run the module with the loader, between the guard's ``import_started`` and ``import_finished``."""
        self.guard.import_started()
        try:
            self.loader.exec_module(module)
        except BaseException:
            self.guard.import_finished(None)
            raise
        self.guard.import_finished(module)

    def __getattr__(self, name: str) -> object:
        """Everything else (resources, source, ...) is the loader's."""
        return getattr(self.loader, name)


class SnapshotFinder(MetaPathFinder):
    """First in ``sys.meta_path``: finds library modules with the other finders, and wraps their loader."""

    def __init__(self, guard: Guard) -> None:
        self.guard = guard

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        """The other finders' spec of a library module, with its loader wrapped; None for other modules."""
        if not is_library_module(fullname):
            return None
        for finder in sys.meta_path:
            find_spec = getattr(finder, "find_spec", None)
            if finder is self or find_spec is None:
                continue
            spec = find_spec(fullname, path, target)
            if spec is None:
                continue
            if hasattr(spec.loader, "exec_module"):
                spec.loader = SnapshottingLoader(spec.loader, self.guard)
            return spec
        return None
