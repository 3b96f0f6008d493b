"""Nothing leaves the machine: no model hub, no telemetry, no outbound connection.

:func:`enforce` tells Hugging Face libraries to stay offline and makes every socket refuse
to connect anywhere but this machine (loopback and Unix sockets stay usable).
"""

from __future__ import annotations

import ipaddress
import os
import socket

_ENV = {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "HF_HUB_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
}


class NetworkBlocked(OSError):
    """Raised when code tries to reach another machine."""


def _is_local(address: object) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    host = str(address[0])
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


_original_connect = socket.socket.connect
_original_connect_ex = socket.socket.connect_ex


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise NetworkBlocked(f"Grounded works offline: blocked a connection to {address}")
    return _original_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(address):
        raise NetworkBlocked(f"Grounded works offline: blocked a connection to {address}")
    return _original_connect_ex(self, address)


def enforce() -> None:
    """Set the offline environment and install the socket guard (idempotent)."""
    for key, value in _ENV.items():
        os.environ[key] = value
    socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
    socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


def is_enforced() -> bool:
    return socket.socket.connect is _guarded_connect
