"""Where a warmup counter lives: ``warmup/daily/{organization_id}/{domain}``."""

from __future__ import annotations

import re
from uuid import UUID

from engine.core.errors import StorageError

KEY_PREFIX = "warmup/daily/"
OrgId = UUID | str
_PART = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]*")


def counter_key(organization_id: OrgId, domain: str) -> str:
    """``warmup/daily/{organization_id}/{domain}``; parts that could escape the prefix
    (or a local directory) are refused."""
    org = str(organization_id)
    for name, part in (("organization_id", org), ("domain", domain)):
        if not _PART.fullmatch(part) or len(part) > 255:
            raise StorageError(
                f"invalid warmup counter {name} {part[:80]!r}",
                transient=False,
                error_class="invalid_key",
            )
    return f"{KEY_PREFIX}{org}/{domain}"
