"""What the `wegweiser` command says when something expected goes wrong: one line on stderr
and an exit code, never a traceback. A traceback is left only for what nobody expected (a
bug), where it helps whoever reports it.

Exit codes (documented in the README):
  0  done
  1  refused: the system understood and said no (an unknown enrolment, a failed demo, ...)
  2  bad input or configuration: a wrong argument, option, file or setting
  3  unreachable: a service, the broker or the database did not answer
  4  credentials refused: the broker or a service did not accept who we are
"""

from __future__ import annotations

import json
import sys
from typing import Any

import httpx
import nats.errors
import typer
from pydantic import ValidationError

REFUSED, BAD_INPUT, UNREACHABLE, NOT_AUTHORIZED = 1, 2, 3, 4


def explain(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and the line to say for an expected failure; None for anything else."""
    from wegweiser.backup.archive import Refused as BackupRefused
    from wegweiser.demo import DemoFailed
    from wegweiser.platform.connect import NotAuthorized
    from wegweiser.platform.files import AlreadyRunning

    if isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        return explain(exc.exceptions[0])
    database = sys.modules.get("sqlalchemy.exc")  # loaded only by a command that opened one
    if database is not None and isinstance(exc, database.OperationalError):
        return UNREACHABLE, "the database cannot be used: " + " ".join(str(exc.orig).split())
    match exc:
        case NotAuthorized():
            return NOT_AUTHORIZED, str(exc)
        case httpx.HTTPStatusError():
            return REFUSED, f"{exc.request.url} answered {exc.response.status_code}"
        case httpx.TransportError():
            where = exc.request.url if _has_request(exc) else "a service"
            return UNREACHABLE, f"cannot reach {where}: {exc or type(exc).__name__}"
        case nats.errors.NoServersError() | nats.errors.TimeoutError() | ConnectionRefusedError():
            return UNREACHABLE, f"cannot reach the broker (NATS): {exc or type(exc).__name__}"
        case nats.errors.NoRespondersError():
            return UNREACHABLE, "no service answers on the broker: is Wegweiser running?"
        case ValidationError():
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()
            )
            return BAD_INPUT, f"not accepted: {problems}"
        case json.JSONDecodeError():
            return BAD_INPUT, f"not JSON: {exc}"
        case OSError() if exc.filename is not None:  # a file or folder that cannot be
            return BAD_INPUT, f"{exc.strerror}: {exc.filename}"
        case DemoFailed() | AlreadyRunning() | BackupRefused():
            return REFUSED, str(exc)
    return None


def _has_request(exc: httpx.TransportError) -> bool:
    try:
        exc.request  # noqa: B018 - raises when the error was made without a request
    except RuntimeError:
        return False
    return True


class Commands(typer.core.TyperGroup):
    """The command tree: every command below runs inside `invoke`, where an expected
    failure becomes one line and its exit code."""

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, SystemExit, KeyboardInterrupt):
            raise
        except Exception as exc:
            found = explain(exc)
            if found is None:  # a bug, or click's own error, which prints itself
                raise
            code, said = found
            typer.echo(f"wegweiser: {said}", err=True)
            raise typer.Exit(code) from None
