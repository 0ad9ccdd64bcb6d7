"""Driver and pool failures as problems: persistence says what they mean, web says it in HTTP.

Only the composition root knows both, so the handler that joins them lives here.
"""

from __future__ import annotations

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from shared.kernel.errors import ServiceUnavailableError
from shared.persistence.errors import DRIVER_ERRORS, translate
from shared.web.problems import domain_problem

log = structlog.stdlib.get_logger("library.errors")


async def _driver_error(request: Request, exc: Exception) -> JSONResponse:
    error = translate(exc)
    if error is None:
        # A bug: the request middleware logs it once and answers the one 500 problem.
        raise exc
    if isinstance(error, ServiceUnavailableError):
        log.warning("database unavailable", error=type(exc).__name__, exc_info=exc)
    else:
        log.info("value refused by the database", error=str(exc))
    return domain_problem(request, error)


def install_driver_error_handlers(app: FastAPI) -> None:
    """Answer lost connections, timeouts and refused values with problem+json (503 or 422)."""
    for error_type in DRIVER_ERRORS:
        app.add_exception_handler(error_type, _driver_error)
