"""The one exception tree. Every error our code raises is a CronwrightError.

Each error may carry a location (``file``, ``line``, ``col``), the manifest
``path`` it concerns (``jobs.aggregate-hourly.cron``) and a ``hint`` that says
how to fix it. ``str(err)`` renders them as one line::

    jobs.yaml:12:5: jobs.aggregate-hourly.cron: weekday '1-5' is ambiguous ...; write MON-FRI
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    file: str
    line: int = 0
    col: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.file}:{self.line}:{self.col}"
        return self.file


class CronwrightError(Exception):
    """Base of every error cronwright raises on purpose."""

    def __init__(
        self,
        message: str,
        *,
        hint: str | None = None,
        location: Location | None = None,
        path: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.location = location
        self.path = path

    def __str__(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.path:
            parts.append(self.path)
        text = self.message if not self.hint else f"{self.message}; {self.hint}"
        parts.append(text)
        return ": ".join(parts)

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location or Location("")
        return (loc.file, loc.line, loc.col, self.path or "", self.message)


class ManifestError(CronwrightError):
    """One problem in the manifest (or its templates)."""


class CronError(ManifestError):
    """A cron expression Cloudflare rejects, or one our policy forbids."""


class ManifestErrors(CronwrightError):
    """Every problem found in a manifest, sorted by location."""

    def __init__(self, errors: Iterable[ManifestError]) -> None:
        self.errors = sorted(errors, key=lambda e: e.sort_key())
        super().__init__("\n".join(str(e) for e in self.errors))

    def __str__(self) -> str:
        return "\n".join(str(e) for e in self.errors)


class GenerateError(CronwrightError):
    """The generator could not write generated/."""


class TemplateError(CronwrightError):
    """A SQL template failed to render (undefined variable, bad syntax)."""


class ConfigError(CronwrightError):
    """Bad runtime configuration (DATABASE_URL, R2 settings)."""


class MessageError(CronwrightError):
    """A queue message that cannot be run: not JSON, no type, unknown type, bad slot."""


class SlotNotDue(MessageError):
    """A slot a little ahead of our clock (skew with Cloudflare's): retry when it is due."""

    def __init__(self, message: str, *, due_in_seconds: float) -> None:
        super().__init__(message)
        self.due_in_seconds = due_in_seconds


class JobFailed(CronwrightError):
    """A job attempt failed. ``transient`` says whether retrying may help."""

    def __init__(self, message: str, *, transient: bool, error_class: str, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.transient = transient
        self.error_class = error_class


class RetryLater(JobFailed):
    """Raised by a python action when this attempt failed and a later one may succeed (a
    service answered 503, a lock was busy): the slot is retried with the job's retry
    policy, and dead-lettered with this message once its attempts run out."""

    def __init__(self, message: str) -> None:
        super().__init__(message, transient=True, error_class="retry_later")


class DatabaseError(JobFailed):
    """A Postgres error, classified by SQLSTATE at the adapter. The server's DETAIL, which
    may quote row values, follows ``DETAIL_MARK`` at the end of the message, so readers
    can leave it out (``cronwright runs`` does unless ``--verbose``)."""

    DETAIL_MARK = " DETAIL: "


def without_detail(error: str) -> str:
    """``error`` without the server's DETAIL, which may quote row values (what the CLI
    shows without ``--verbose``, and what a notification says)."""
    text, mark, _ = error.partition(DatabaseError.DETAIL_MARK)
    return f"{text} (DETAIL hidden; --verbose shows it)" if mark else error


class NotMigrated(DatabaseError):
    """cronwright's schema, or one of its tables or functions, is missing: the database
    was never migrated, or not since an upgrade. No retry helps and there is nowhere to
    record a failure, so whatever met it stops with the hint to migrate."""


class StorageError(JobFailed):
    """An object-store (R2 / S3) error, classified by HTTP status at the adapter."""


class QueueError(JobFailed):
    """A Cloudflare Queues REST API failure, classified by HTTP status at the client.
    ``retry_after`` is the server's Retry-After, in seconds, when it sent one."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.retry_after = retry_after


class NoticeError(CronwrightError):
    """A notification or healthcheck ping that did not get through. ``permanent``: trying
    again cannot help (an unset variable in its URL, a URL Apprise does not know)."""

    def __init__(self, message: str, *, permanent: bool = False, **kw: object) -> None:
        super().__init__(message, **kw)  # type: ignore[arg-type]
        self.permanent = permanent


class ServiceFailed(CronwrightError):
    """A service's background loop (its scheduler) died for good: the process stops, and
    the command fails (exit 1) with this one line."""

    transient = False  # failed, not bad input: what the command line maps to exit 1
