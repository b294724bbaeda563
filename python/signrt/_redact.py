"""Redaction of secrets in text that is shown, logged or served.

Camera and stream addresses often carry credentials (``rtsp://admin:secret@cam/``,
``http://cam/video?token=...``, GStreamer's ``rtspsrc user-pw=...``). Every part of signrt
that puts a source description, an error message or a URL into a log line, an HTTP response
or a WebSocket message passes it through :func:`redact` first, so the one rule lives here.
"""

from __future__ import annotations

import re
from typing import Final

__all__ = ["MASK", "redact"]

#: What a secret is replaced with.
MASK: Final = "***"

# scheme://user:password@host -> scheme://user:***@host (a lone user part is kept: it names
# the account, it does not open it). The password runs to the last '@' before the path.
_USERINFO: Final = re.compile(
    r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<user>[^/@:\s]*):[^/\s]*@"
)
# key=value pairs whose key names a secret, in query strings and GStreamer properties.
_SECRET_KEYS: Final = (
    r"password|passwd|pass|pwd|user-pw|user_pw|secret|token|access[_-]?token|api[_-]?key|"
    r"apikey|key|auth|authorization|signature|sig|credentials?|session|sessionid"
)
_PAIR: Final = re.compile(
    rf"(?P<key>(?<![A-Za-z0-9_\-])(?:{_SECRET_KEYS}))(?P<sep>\s*=\s*)(?P<quote>[\"']?)"
    r"(?P<value>[^&\s\"';#]+)",
    re.IGNORECASE,
)


def redact(text: object) -> str:
    """Return ``str(text)`` with credentials masked.

    Masks the password of ``scheme://user:password@host`` and the value of ``key=value``
    pairs whose key names a secret (``password``, ``token``, ``key``, ``user-pw``,
    ``signature``, ...), wherever they occur in the text (URLs inside error messages too).

    Args:
        text: A URL, a source description or any message that may contain one.

    Returns:
        The text with each secret replaced by ``***``.
    """
    s = str(text)
    if "://" in s:
        s = _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:{MASK}@", s)
    if "=" in s:
        s = _PAIR.sub(lambda m: f"{m['key']}{m['sep']}{m['quote']}{MASK}", s)
    return s
