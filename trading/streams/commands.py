"""Seed 002's trading commands on the partner stream, run as their REST twins.

A command is not a second implementation: it becomes the in-process request
its REST endpoint would receive (method, path, query, JSON body) and goes
through that endpoint's view: the same validation, scopes, rate-limit window
(shared with REST, per key and group), services and error codes. The
request carries an `accounts.api_auth.StreamCommand` instead of an
Authorization header: the socket's key, re-checked on every command (a
revoked key stops working at once), its client address (the key's IP
allowlist) and, for keys that sign their writes, the command's own
`timestamp` and `signature`.

    command               REST twin (under /v1/intelligence/)
    get_leverage          GET    leverage?symbol=…
    set_leverage          POST   leverage                      {symbol, leverage}
    get_leverage_levels   GET    leverage/levels[?symbol=…]
    add_order             POST   orders                        {symbol, side, order_type,
                                                                order_time_in_force, quantity,
                                                                price, take_profit, stop_loss,
                                                                client_order_id, leverage}
    cancel_order          DELETE orders/<order_id>  (cancel_order_id_type "order_id", default)
                          DELETE orders/by-client-id/<order_id>  ("client_order_id")
    modify_order          PATCH  orders/<order_id> or by-client-id  {price, quantity,
                                                                take_profit, stop_loss}

`account_id` (optional when the key has one account) goes in the query
string, as on REST. Pulsed subscriptions and snapshots read through the
same views (`read`), without counting against the key's rate limits: the
server sends them, the client does not ask each time.
"""

import io
from dataclasses import dataclass
from urllib.parse import urlencode

import orjson
from django.core.handlers.wsgi import WSGIRequest
from django.urls import Resolver404, resolve

from accounts.api_auth import StreamCommand
from portal.api.errors import error_body
from portal.errors import ErrorCode
from portal.validators import text_problem

API_ROOT = "/v1/intelligence/"
ORDER_ID_TYPES = ("order_id", "client_order_id")
MAX_ID_LENGTH = 100


class CommandRejected(Exception):
    """A command the stream itself refuses before its REST twin runs (400 invalid_params)."""


@dataclass(frozen=True, slots=True)
class Command:
    method: str
    path: str  # under API_ROOT; "{order}" is the order lookup
    query: tuple[str, ...] = ()  # params that go in the query string
    rename: tuple[tuple[str, str], ...] = ()  # (seed name, REST name) in the body

    @property
    def is_write(self) -> bool:
        return self.method != "GET"


COMMANDS: dict[str, Command] = {
    "get_leverage": Command("GET", "leverage", query=("symbol",)),
    "set_leverage": Command("POST", "leverage"),
    "get_leverage_levels": Command("GET", "leverage/levels", query=("symbol",)),
    "add_order": Command("POST", "orders", rename=(("order_time_in_force", "time_in_force"),)),
    "cancel_order": Command("DELETE", "{order}"),
    "modify_order": Command("PATCH", "{order}"),
}


StreamErrorBody = dict[str, str]


@dataclass(frozen=True, slots=True)
class Reply:
    """What the REST twin answered: its status, JSON body and Retry-After (if any)."""

    status: int
    body: bytes
    retry_after: str | None = None

    def error(self) -> StreamErrorBody | None:
        """The error object ({"code", "message"}) this reply is, or None for a result
        (a REJECTED leverage change is a 422 result, not an error)."""
        if self.status < 400:
            return None
        body = orjson.loads(self.body)
        if isinstance(body, dict) and set(body) == {"code", "message"}:
            return body
        return None


def _order_path(params: dict) -> str:
    order_id = params.get("order_id")
    kind = params.get("cancel_order_id_type") or "order_id"
    if kind not in ORDER_ID_TYPES:
        raise CommandRejected(f"cancel_order_id_type is one of {', '.join(ORDER_ID_TYPES)}.")
    if not isinstance(order_id, str) or not order_id.strip():
        raise CommandRejected("order_id is required.")
    if (
        len(order_id) > MAX_ID_LENGTH
        or any(char in order_id for char in "/?#%\\")
        or text_problem(order_id) is not None  # a NUL or other control character
    ):
        raise CommandRejected("order_id is not a valid order id.")
    return f"orders/{order_id}" if kind == "order_id" else f"orders/by-client-id/{order_id}"


def _split(command: Command, params: dict) -> tuple[str, dict, dict | None]:
    """(path, query, body) of the REST request for `params`."""
    path = (
        command.path.replace("{order}", _order_path(params))
        if "{order}" in command.path
        else command.path
    )
    query = {"account_id": params["account_id"]} if "account_id" in params else {}
    if command.method == "GET":
        query |= {name: params[name] for name in command.query if params.get(name) is not None}
        return path, query, None
    body = {
        name: value
        for name, value in params.items()
        if name not in ("account_id", "order_id", "cancel_order_id_type")
    }
    for seed_name, rest_name in command.rename:
        if seed_name in body:
            body.setdefault(rest_name, body.pop(seed_name))
    return path, query, body


def _query_value(value: object) -> str:
    if isinstance(value, str):
        return value
    return orjson.dumps(value).decode()


def rest_call(
    *,
    method: str,
    path: str,
    query: dict,
    body: dict | None,
    auth: StreamCommand,
    host: str,
) -> Reply:
    """Run one /v1/intelligence request in-process through its view (sync: call it
    from a thread). Never raises for what the API answers: every outcome is a Reply."""
    payload = b"" if body is None else orjson.dumps(body)
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": API_ROOT + path,
        "SCRIPT_NAME": "",
        "QUERY_STRING": urlencode({name: _query_value(v) for name, v in query.items()}),
        "REMOTE_ADDR": auth.address,
        "SERVER_NAME": host.partition(":")[0] or "localhost",
        "SERVER_PORT": "443",
        "HTTP_HOST": host or "localhost",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(payload)),
        "wsgi.input": io.BytesIO(payload),
        "wsgi.url_scheme": "https",
    }
    request = WSGIRequest(environ)
    request.stream_command = auth
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return Reply(404, orjson.dumps(error_body(ErrorCode.NOT_FOUND, f"No endpoint {path}.")))
    response = match.func(request, *match.args, **match.kwargs)
    return Reply(response.status_code, response.content, response.get("Retry-After"))


def command_run(*, name: str, params: dict, auth: StreamCommand, host: str) -> Reply:
    """Run command `name` (a key of COMMANDS) with `params` through its REST twin."""
    command = COMMANDS[name]
    try:
        path, query, body = _split(command, params)
    except CommandRejected as exc:
        return Reply(400, orjson.dumps(error_body(ErrorCode.INVALID_PARAMS, str(exc))))
    return rest_call(method=command.method, path=path, query=query, body=body, auth=auth, host=host)
