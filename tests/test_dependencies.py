"""Dependencies point down (ARCHITECTURE 6b): what import-linter (`lint-imports`, in
`make test`) cannot see by itself.

- No import of our own code hides inside a function (to dodge a cycle, or a layer):
  only AppConfig.ready() registers that way. Imports of heavy or optional third-party
  modules inside functions are fine (pyproject.toml's [tool.importlinter] comment).
- What accounts asks of trading is registered at start-up, and fails closed when not.
- Every task an enqueue helper names is a registered Celery task.
"""

import ast
from decimal import Decimal
from pathlib import Path

import pytest
from celery import current_app
from django.core.exceptions import ImproperlyConfigured

from accounts import enqueue as accounts_enqueue
from accounts import hooks
from trading import enqueue as trading_enqueue

ROOT = Path(__file__).resolve().parent.parent
APPS = ("portal", "accounts", "trading")


def _imports_inside_functions(path: Path) -> list[tuple[int, str, str]]:
    """(line, function, module) of each import of our own code inside a function."""
    found = []

    def visit(node: ast.AST, function: str | None) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                visit(child, child.name)
                continue
            if function is not None and isinstance(child, ast.Import | ast.ImportFrom):
                if isinstance(child, ast.ImportFrom):
                    modules = ["." * child.level + (child.module or "")]
                else:
                    modules = [alias.name for alias in child.names]
                for module in modules:
                    if module.startswith(".") or module.split(".")[0] in APPS:
                        found.append((child.lineno, function, module))
            visit(child, function)

    visit(ast.parse(path.read_text(), str(path)), None)
    return found


def test_no_import_of_our_code_hides_inside_a_function():
    hidden = []
    for app in APPS:
        for path in sorted((ROOT / app).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            for line, function, module in _imports_inside_functions(path):
                if path.name == "apps.py" and function == "ready":
                    continue  # AppConfig.ready(): registrations once the registry is ready
                hidden.append(f"{path.relative_to(ROOT)}:{line} {function}() imports {module}")
    assert hidden == []


def test_the_check_finds_an_import_inside_a_function(tmp_path):
    example = tmp_path / "example.py"
    example.write_text(
        "import json\n\n"
        "def f():\n"
        "    import redis\n"
        "    from trading.services.orders import order_place\n"
        "    return order_place\n"
    )
    assert _imports_inside_functions(example) == [(5, "f", "trading.services.orders")]


def test_an_unregistered_hook_refuses_rather_than_skipping_the_check(monkeypatch):
    monkeypatch.setattr(hooks, "_registered", {})
    with pytest.raises(ImproperlyConfigured, match="withdrawal check"):
        hooks.withdrawal_check(account=None, amount=Decimal("1"))
    with pytest.raises(ImproperlyConfigured, match="margin summary"):
        hooks.margin_summary_get(account=None)


def test_every_task_an_enqueue_helper_names_is_registered():
    current_app.loader.import_default_modules()
    names = [
        value
        for module in (accounts_enqueue, trading_enqueue)
        for key, value in vars(module).items()
        if key.isupper() and isinstance(value, str)
    ]
    assert len(names) == 10
    assert [name for name in names if name not in current_app.tasks] == []
