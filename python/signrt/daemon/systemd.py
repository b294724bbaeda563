"""systemd notification protocol (``sd_notify``) without any extra dependency.

systemd passes a unix datagram socket in ``$NOTIFY_SOCKET`` to ``Type=notify`` services.
The service sends ``READY=1`` once it serves, ``WATCHDOG=1`` at least every half
``$WATCHDOG_USEC``, and ``STOPPING=1`` when it shuts down. Outside systemd (no
``$NOTIFY_SOCKET``) every call is a cheap no-op.
"""

from __future__ import annotations

import logging
import os
import socket

__all__ = ["Notifier", "watchdog_interval"]

log = logging.getLogger(__name__)


def watchdog_interval(env: dict[str, str] | None = None) -> float | None:
    """Seconds between watchdog pings (half of ``$WATCHDOG_USEC``), or ``None`` if disabled.

    ``$WATCHDOG_PID``, when set, must be this process's pid.

    Args:
        env: Environment to read (default ``os.environ``).

    Returns:
        The ping interval in seconds, or ``None`` when systemd expects no pings.
    """
    e = os.environ if env is None else env
    usec = e.get("WATCHDOG_USEC")
    if not usec:
        return None
    pid = e.get("WATCHDOG_PID")
    if pid and pid.strip() != str(os.getpid()):
        return None
    try:
        value = int(usec)
    except ValueError:
        log.warning("ignoring malformed WATCHDOG_USEC=%r", usec)
        return None
    return value / 2e6 if value > 0 else None


class Notifier:
    """Send state changes to systemd over ``$NOTIFY_SOCKET``.

    Args:
        address: Socket path (``@name`` for the abstract namespace); default
            ``$NOTIFY_SOCKET``. ``None`` or empty disables notifications.
    """

    def __init__(self, address: str | None = None) -> None:
        addr = os.environ.get("NOTIFY_SOCKET") if address is None else address
        self.address: str | None = addr or None
        self._sock: socket.socket | None = None
        self.sent: list[str] = []

    @property
    def enabled(self) -> bool:
        """Whether a notification socket is configured."""
        return self.address is not None

    def notify(self, *states: str) -> bool:
        """Send ``KEY=VALUE`` lines in one datagram (e.g. ``"READY=1"``, ``"STATUS=..."``).

        Returns:
            True when sent; False when disabled or the socket failed (logged, never raised:
            a monitoring hiccup must not stop the service).
        """
        if self.address is None or not states:
            return False
        payload = "\n".join(states).encode()
        target = self.address
        if target.startswith("@"):
            target = "\0" + target[1:]
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                self._sock.setblocking(False)
            self._sock.sendto(payload, target)
        except OSError as exc:
            log.warning("sd_notify to %s failed: %s", self.address, exc)
            self.close()
            return False
        self.sent.append(payload.decode())
        return True

    def ready(self, status: str | None = None) -> bool:
        """Send ``READY=1`` (with an optional ``STATUS=`` line)."""
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        """Send ``WATCHDOG=1``."""
        return self.notify("WATCHDOG=1")

    def stopping(self) -> bool:
        """Send ``STOPPING=1``."""
        return self.notify("STOPPING=1")

    def status(self, text: str) -> bool:
        """Send a free-form ``STATUS=`` line (shown by ``systemctl status``)."""
        return self.notify(f"STATUS={text}")

    def close(self) -> None:
        """Close the socket."""
        sock, self._sock = self._sock, None
        if sock is not None:
            sock.close()
