"""Whether a host name or address stays on this machine: the one reading of "loopback"
for the database URL's TLS default, the Cloudflare API override and the web console's
bind address."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """``localhost`` or a loopback address (127.0.0.0/8, ``::1``, also in brackets)."""
    name = host.strip()
    if name.lower() == "localhost":
        return True
    if name.startswith("[") and name.endswith("]"):
        name = name[1:-1]
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False
