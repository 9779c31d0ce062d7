"""What the OpenAPI document says each /v1 operation can answer, and two ways of
checking that it says enough (used by `tests/api/test_error_codes.py` and by the
autouse fixture `error_codes_declared` in tests/conftest.py):

- `ErrorRecorder`: every error response a DRF view gives during a test, as
  (view class, method, status, code), compared with the operation's responses in the
  schema document at the end of the test.
- `codes_raised`: the ErrorCode members a view method can raise, read from the source
  (AST) of the method and of every function of ours it calls by name, transitively:
  `raise X(...)` / `X(...)` of a DomainError subclass (its `error`, or its `code=`),
  `StreamError(ErrorCode.X, …)`. Calls through objects it cannot name statically (a
  venue adapter's methods, a callback) are not followed: the recorder covers those
  the tests reach.
"""

import ast
import functools
import inspect
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from types import FunctionType, MethodType, ModuleType
from typing import Any

from drf_spectacular.generators import SchemaGenerator
from rest_framework.views import APIView

from portal import errors as portal_errors
from portal.errors import DomainError, ErrorCode

OUR_PACKAGES = ("accounts.", "trading.", "portal.", "tests.")  # tests: its own examples
HTTP_METHODS = ("get", "post", "put", "patch", "delete")
PRODUCT_URLCONF = "portal.urls"


@dataclass(frozen=True)
class Operation:
    path: str
    method: str  # upper case
    view_class: type
    operation_id: str
    declared: frozenset[tuple[int, str]]  # (status, code) pairs of its error responses


@functools.cache
def schema_operations() -> dict[tuple[type, str], tuple[Operation, ...]]:
    """The schema document's operations by (view class, method), with the error codes
    each lists: the enum of `code` in every 4xx/5xx response's JSON schema. The
    product's URLconf, whichever a test has put in place (a test's own views are not
    operations of the API)."""
    generator = SchemaGenerator(urlconf=PRODUCT_URLCONF)
    schema = generator.get_schema(request=None, public=True)
    found: dict[tuple[type, str], list[Operation]] = {}
    for path, _path_regex, method, view in generator._get_paths_and_endpoints():
        operation = schema["paths"].get(path, {}).get(method.lower())
        if operation is None:  # the schema and docs views themselves
            continue
        declared = frozenset(
            (int(status), code)
            for status, response in operation["responses"].items()
            if int(status) >= 400
            for content in response.get("content", {}).values()
            for code in content["schema"].get("properties", {}).get("code", {}).get("enum", ())
        )
        key = (type(view), method.upper())
        found.setdefault(key, []).append(
            Operation(path, method.upper(), type(view), operation["operationId"], declared)
        )
    return {key: tuple(operations) for key, operations in found.items()}


@dataclass
class ErrorRecorder:
    """Error responses of DRF views, as (view class, method, status, code)."""

    seen: set[tuple[type, str, int, str]] = field(default_factory=set)

    def record(self, view: APIView, request, response) -> None:
        data = getattr(response, "data", None)
        if response.status_code < 400 or not isinstance(data, dict) or "code" not in data:
            return
        method = "GET" if request.method == "HEAD" else request.method
        self.seen.add((type(view), method, response.status_code, data["code"]))

    def undeclared(self) -> list[str]:
        """What was answered but is not in the schema, one line each."""
        operations = schema_operations()
        problems = []
        for view_class, method, status, code in sorted(self.seen, key=str):
            for operation in operations.get((view_class, method), ()):
                if (status, code) not in operation.declared:
                    problems.append(
                        f"{operation.operation_id} ({method} {operation.path}) answered "
                        f"{status} {code!r}, which its schema does not list"
                    )
        return problems

    @classmethod
    def patched(cls, monkeypatch) -> "ErrorRecorder":
        """A recorder fed by every DRF view's `finalize_response` (errors included)."""
        recorder = cls()
        original = APIView.finalize_response

        def finalize_response(view, request, response, *args, **kwargs):
            response = original(view, request, response, *args, **kwargs)
            recorder.record(view, request, response)
            return response

        monkeypatch.setattr(APIView, "finalize_response", finalize_response)
        return recorder


# --- Static: the codes a view method can raise ------------------------------------------

Raised = frozenset[tuple[type, ErrorCode]]  # (exception class, code): `except` filters by class


def codes_raised(function: Callable, *, owner: type | None = None) -> frozenset[ErrorCode]:
    """The ErrorCode members `function` (a method of `owner`, if given) can raise, through
    the functions of ours it calls by name, transitively, less what an `except` on the
    way catches without raising it again."""
    return frozenset(code for _, code in _WALKER.raised(function, owner))


def _ours(value: Any) -> bool:
    module = getattr(value, "__module__", None) or ""
    return module.startswith(OUR_PACKAGES) and module != portal_errors.__name__


def _member(node: ast.AST) -> ErrorCode | None:
    """`ErrorCode.X` → X."""
    if (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "ErrorCode"
    ):
        return ErrorCode[node.attr]
    return None


def _function(value: Any) -> FunctionType | None:
    if isinstance(value, staticmethod | classmethod):
        value = value.__func__
    if isinstance(value, MethodType):
        value = value.__func__
    if isinstance(value, property):
        value = value.fget
    value = inspect.unwrap(value) if callable(value) else value
    return value if isinstance(value, FunctionType) and _ours(value) else None


@dataclass
class _Scope:
    """Where a function's names resolve: its module and closure, its class for `self.`."""

    function: FunctionType
    owner: type | None
    namespace: dict[str, Any]

    def resolve(self, node: ast.AST) -> Any:
        """What an expression names: `name`, `module.name`, `Class.name`, `self.name`,
        `super().name`."""
        if isinstance(node, ast.Name):
            return self.namespace.get(node.id)
        if isinstance(node, ast.Tuple):
            return tuple(self.resolve(item) for item in node.elts)
        if not isinstance(node, ast.Attribute):
            return None
        value = node.value
        if isinstance(value, ast.Name) and value.id in ("self", "cls"):
            return getattr(self.owner, node.attr, None) if self.owner is not None else None
        if isinstance(value, ast.Call) and isinstance(value.func, ast.Name):
            if value.func.id == "super" and self.owner is not None:
                return self._super(node.attr)
            return None
        base = self.resolve(value)
        if isinstance(base, ModuleType | type):
            return inspect.getattr_static(base, node.attr, None)
        return None

    def _super(self, name: str) -> Any:
        mro = self.owner.__mro__
        defining = next(
            (
                i
                for i, klass in enumerate(mro)
                if _function(klass.__dict__.get(name)) is self.function
            ),
            0,
        )
        return next((k.__dict__[name] for k in mro[defining + 1 :] if name in k.__dict__), None)


class _Walker:
    def __init__(self):
        self.memo: dict[tuple[FunctionType, type | None], Raised] = {}
        self.active: set[tuple[FunctionType, type | None]] = set()

    def raised(self, function: Any, owner: type | None) -> Raised:
        target = _function(function)
        if target is None:
            return frozenset()
        key = (target, owner)
        if key in self.memo:
            return self.memo[key]
        if key in self.active:  # a cycle: its codes are counted where it was entered
            return frozenset()
        self.active.add(key)
        try:
            source = textwrap.dedent(inspect.getsource(target))
        except (OSError, TypeError):
            source = ""
        namespace = dict(target.__globals__)
        closure = zip(target.__code__.co_freevars, target.__closure__ or (), strict=True)
        namespace.update((name, cell.cell_contents) for name, cell in closure)
        scope = _Scope(target, owner, namespace)
        result = frozenset(self._visit(ast.parse(source), scope)) if source else frozenset()
        self.active.discard(key)
        self.memo[key] = result
        return result

    def _visit(self, node: ast.AST, scope: _Scope) -> set[tuple[type, ErrorCode]]:
        if isinstance(node, ast.Try | ast.TryStar):
            return self._try(node, scope)
        found: set[tuple[type, ErrorCode]] = set()
        if isinstance(node, ast.Call):
            found |= self._call(node, scope)
        for child in ast.iter_child_nodes(node):
            found |= self._visit(child, scope)
        return found

    def _try(self, node: ast.Try, scope: _Scope) -> set[tuple[type, ErrorCode]]:
        body: set[tuple[type, ErrorCode]] = set()
        for statement in node.body:
            body |= self._visit(statement, scope)
        caught: list[type] = []
        rest: set[tuple[type, ErrorCode]] = set()
        for handler in node.handlers:
            reraised = any(
                isinstance(inner, ast.Raise) and inner.exc is None for inner in ast.walk(handler)
            )
            if not reraised:
                kinds = BaseException if handler.type is None else scope.resolve(handler.type)
                kinds = kinds if isinstance(kinds, tuple) else (kinds,)
                caught.extend(kind for kind in kinds if isinstance(kind, type))
            for statement in handler.body:
                rest |= self._visit(statement, scope)
        for statement in (*node.orelse, *node.finalbody):
            rest |= self._visit(statement, scope)
        body = {(kind, code) for kind, code in body if not issubclass(kind, tuple(caught))}
        return body | rest

    def _call(self, call: ast.Call, scope: _Scope) -> set[tuple[type, ErrorCode]]:
        callee = scope.resolve(call.func)
        if isinstance(callee, type) and issubclass(callee, DomainError):
            code = next((k.value for k in call.keywords if k.arg == "code"), None)
            member = None if code is None else _member(code)
            return {(callee, member or callee.error)}
        if isinstance(callee, type):
            return set()  # a class of ours: its constructor is not followed
        on_self = isinstance(call.func, ast.Attribute) and (
            (isinstance(call.func.value, ast.Name) and call.func.value.id in ("self", "cls"))
            or isinstance(call.func.value, ast.Call)  # super().name(…)
        )
        return set(self.raised(callee, scope.owner if on_self else None))


_WALKER = _Walker()
