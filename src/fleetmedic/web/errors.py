"""Every error the API answers has one shape: ``{"error": {"status", "code", "message"}}``.

Tools branch on ``code`` (stable), people read ``message`` (one line). A bug becomes a 500 with
code ``internal`` and no traceback in the body (it goes to the server's log); bad input the store
or the controller refuses (:class:`~fleetmedic.model.errors.InputError`, e.g. approving an action
with bad arguments) is a 400 with its one-line message.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from fleetmedic.model.errors import InputError, StoreError
from fleetmedic.web.schemas import ErrorBody

log = logging.getLogger("fleetmedic.web")

_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid_request",
    500: "internal",
    503: "unavailable",
}


class ApiError(Exception):
    """Raised by handlers to answer with a structured error."""

    def __init__(self, status: int, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code or _CODES.get(status, "error")


def body(status: int, message: str, code: str | None = None, details: Any = None) -> JSONResponse:
    error: dict[str, Any] = {
        "status": status,
        "code": code or _CODES.get(status, "error"),
        "message": message,
    }
    if details is not None:
        error["details"] = details
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": error}, status_code=status, headers=headers)


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "The request could not be read (e.g. a body that is not JSON)."),
        (401, "No valid token or session."),
        (403, "The role is not enough, or the CSRF token is missing."),
        (404, "Not found."),
        (409, "The action is not waiting for an answer (already decided)."),
        (422, "A parameter is invalid."),
    )
}


def _validation_details(exc: RequestValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": [str(part) for part in err.get("loc", ())], "message": str(err.get("msg", ""))}
        for err in exc.errors()[:20]
    ]


def install(app: FastAPI) -> None:
    """Register the handlers that turn every error into :class:`ErrorBody`."""

    @app.exception_handler(ApiError)
    async def _api(_: Request, exc: ApiError) -> Response:
        return body(exc.status, exc.message, exc.code)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> Response:
        return body(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> Response:
        first = _validation_details(exc)
        message = "invalid request"
        if first:
            message = f"{'.'.join(first[0]['loc'])}: {first[0]['message']}"
        return body(422, message, details=first)

    @app.exception_handler(InputError)
    async def _input(_: Request, exc: InputError) -> Response:
        return body(400, str(exc).splitlines()[0] if str(exc) else "bad request")

    @app.exception_handler(StoreError)
    async def _store(_: Request, exc: StoreError) -> Response:
        log.warning("store unavailable: %s", exc)
        return body(503, str(exc).splitlines()[0], "store_unavailable")

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception) -> Response:
        log.exception("unhandled error", exc_info=exc)
        return body(500, "internal error (see the server log)")
