"""API errors with OpenAI-style bodies, and the handlers that render them.

Every error the API returns has the body OpenAI's API returns, so clients
such as the official ``openai`` package raise their usual typed exceptions::

    {"error": {"message": "...", "type": "invalid_request_error", "param": "messages", "code": null}}

A user's mistake is a 4xx; only a bug in the server is a 500.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse

#: ``type`` of the error body for each status.
ERROR_TYPES: dict[int, str] = {
    400: "invalid_request_error",
    401: "authentication_error",
    404: "not_found_error",
    405: "invalid_request_error",
    408: "timeout_error",
    413: "invalid_request_error",
    500: "server_error",
    503: "server_error",
}


class ApiError(Exception):
    """An error the API answers with an OpenAI-style JSON body.

    Args:
        status: HTTP status code.
        message: What was wrong, with the value and the fix.
        param: The request field at fault, if any (``"messages[1].role"``).
        code: A machine-readable code (``"context_length_exceeded"``).
        headers: Extra response headers (``Retry-After``, ``WWW-Authenticate``).
    """

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status, message, param, code, headers)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.headers = dict(headers or {})

    def __str__(self) -> str:
        return f"{self.status}: {self.message}"

    def body(self) -> dict[str, Any]:
        """The OpenAI-style error body."""
        return {
            "error": {
                "message": self.message,
                "type": ERROR_TYPES.get(self.status, "invalid_request_error" if self.status < 500 else "server_error"),
                "param": self.param,
                "code": self.code,
            }
        }

    def response(self) -> JSONResponse:
        """The error as a JSON response."""
        return JSONResponse(self.body(), status_code=self.status, headers=self.headers)


def bad_request(message: str, param: str | None = None, code: str | None = None) -> ApiError:
    """A 400 ``invalid_request_error``."""
    return ApiError(400, message, param=param, code=code)


def location(loc: tuple[Any, ...]) -> str:
    """A pydantic error location as a field path: ``("messages", 1, "role")`` -> ``messages[1].role``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def from_validation_error(exc: Any) -> ApiError:
    """A pydantic ``ValidationError`` as a 400 naming the first bad field and its value."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    # Union members add their type to the location ("content.str"); drop those parts.
    loc = tuple(p for p in first["loc"] if not (isinstance(p, str) and ("[" in p or p in {"str", "int", "float", "bool", "list"})))
    param = location(loc) or None
    if first["type"] == "extra_forbidden":
        message = f"Unrecognized request argument supplied: {param}"
    elif first["type"] == "missing":
        message = f"Missing required parameter: '{param}'."
    else:
        reason = first["msg"].removeprefix("Value error, ")
        message = f"Invalid value for '{param}': {reason}, got {_short(first.get('input'))}."
    more = len(errors) - 1
    if more and first["type"] != "extra_forbidden":
        message += f" ({more} more problem{'s' if more > 1 else ''} in the request)"
    return bad_request(message, param=param)


async def api_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI handler for :class:`ApiError`."""
    assert isinstance(exc, ApiError)
    return exc.response()


async def http_error_handler(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's 404 / 405 (unknown path, wrong method) in OpenAI style."""
    status = int(getattr(exc, "status_code", 500))
    if status == 404:
        message = f"Unknown request URL: {request.method} {request.url.path}. See docs/serving.md for the endpoints."
    elif status == 405:
        message = f"Method {request.method} is not allowed for {request.url.path}."
    else:
        message = str(getattr(exc, "detail", "")) or "HTTP error"
    return ApiError(status, message, code=None, headers=dict(getattr(exc, "headers", None) or {})).response()
