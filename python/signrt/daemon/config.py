"""Daemon configuration: defaults, a TOML file, environment, then command-line flags.

A TOML file may use flat keys or group them in tables; table names are only for
readability (``[server] port = 8765`` is the same as ``port = 8765``)::

    model = "/opt/signrt/model.onnx"
    device = "auto"

    [source]
    source = "/dev/video0"
    width = 640
    height = 480

    [server]
    host = "0.0.0.0"
    port = 8765
    token_file = "/etc/signrt/token"

    [stream]
    mode = "window"
    threshold = 0.6
"""

from __future__ import annotations

import dataclasses
import ipaddress
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from ..errors import ConfigError

__all__ = ["TOKEN_ENV", "DaemonConfig", "is_loopback"]

#: Environment variable holding the bearer token.
TOKEN_ENV = "SIGNRT_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    if not isinstance(host, str):
        return False
    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


@dataclass
class DaemonConfig:
    """Everything ``signrt serve`` and ``signrt demo`` can be told.

    Attributes:
        model: ONNX model path; ``None`` uses the bundled demo model.
        device: Inference device (``auto``, ``cpu``, ``cuda``, ``tensorrt``, ``trt``).
        source: Frame source (see :func:`signrt.extract.open_source`); ``None`` replays the
            bundled synthetic clip.
        fps: Replay / image-folder / paced-file rate.
        loop: Restart replays and files at the end (``serve`` default True).
        width: Requested camera width.
        height: Requested camera height.
        landmarker: ``None`` for legacy Holistic or a ``.task`` HolisticLandmarker model.
        model_complexity: Pose model complexity of the legacy extractor.
        threads: Extractor inference threads (``None``: MediaPipe default).
        mode: Stream mode (``window`` or ``segment``).
        stride: Window mode: classify every ``stride`` frames.
        threshold: Minimum score of an event (on the scale of ``score``).
        score: What the threshold compares: ``probability`` or ``energy`` (a threshold
            given without a score is a probability; see ``Recognizer.stream``).
        confirm: Window mode: confirming classifications needed.
        cooldown: Window mode: seconds before the same label repeats.
            (``stride``, ``threshold``, ``score``, ``confirm``, ``cooldown``: ``None``
            takes the model's tuned stream settings, ``signrt.stream``, else the Stream's
            defaults.)
        host: Address to bind (default localhost only).
        port: TCP port.
        token: Bearer token for ``/ws`` and ``/metrics``; required off localhost.
        token_file: File holding the token (first line), an alternative to ``token``.
        queue_size: Messages buffered per WebSocket client; oldest dropped beyond.
        max_message_bytes: Largest client message accepted.
        max_clients: WebSocket clients beyond this are refused (503).
        max_connections: Open HTTP connections at most (also bounded by the descriptor
            limit, ``RLIMIT_NOFILE``); beyond it the oldest idle connection is closed.
        header_timeout: Seconds a connection may take to send a complete request (and may
            stay idle between requests) before it is closed.
        send_timeout: Seconds one send may block before a client is disconnected.
        landmarks_fps: Most landmark messages per second sent to subscribed clients.
        status_interval: Seconds between ``status`` messages.
        record: Folder to record the landmark stream to (rotating parquet), or ``None``.
        record_rotate: Seconds per recorded file.
        shutdown_grace: Seconds given to clients to receive queued messages at shutdown.
    """

    model: str | None = None
    device: str = "auto"
    source: str | None = None
    fps: float | None = None
    loop: bool = True
    width: int | None = None
    height: int | None = None
    landmarker: str | None = None
    model_complexity: int = 1
    threads: int | None = None
    mode: str = "window"
    stride: int | None = None
    threshold: float | None = None
    score: str | None = None
    confirm: int | None = None
    cooldown: float | None = None
    host: str = "127.0.0.1"
    port: int = 8765
    token: str | None = None
    token_file: str | None = None
    queue_size: int = 64
    max_message_bytes: int = 4096
    max_clients: int = 256
    max_connections: int = 512
    header_timeout: float = 10.0
    send_timeout: float = 30.0
    landmarks_fps: float = 15.0
    status_interval: float = 1.0
    record: str | None = None
    record_rotate: float = 60.0
    shutdown_grace: float = 0.5

    @classmethod
    def keys(cls) -> list[str]:
        """Names of all settings."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], where: str = "config") -> DaemonConfig:
        """Build a config from a (possibly nested) mapping, checking every key.

        Raises:
            ConfigError: On an unknown key or a value of the wrong type.
        """
        flat: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(value, Mapping):
                for k, v in value.items():
                    flat[k] = v
            else:
                flat[key] = value
        return cls().updated(flat, where)

    def updated(self, changes: Mapping[str, Any], where: str = "config") -> DaemonConfig:
        """Return a copy with ``changes`` applied (``None`` values are skipped).

        Raises:
            ConfigError: On an unknown key or a value of the wrong type.
        """
        known = {f.name: f for f in fields(self)}
        hints = _setting_types()
        clean: dict[str, Any] = {}
        for key, value in changes.items():
            name = str(key).replace("-", "_")
            if name not in known:
                raise ConfigError(
                    f"{where}: unknown setting {key!r}; valid settings: {', '.join(known)}"
                )
            if value is None:
                continue
            clean[name] = _checked(where, str(key), hints[name], value)
        return dataclasses.replace(self, **clean)

    @classmethod
    def from_toml(cls, path: str | os.PathLike[str]) -> DaemonConfig:
        """Read a TOML configuration file.

        Raises:
            ConfigError: If the file is missing, not TOML, or has unknown settings.
        """
        p = Path(path)
        try:
            import tomllib
        except ImportError:  # Python 3.10
            try:
                import tomli as tomllib
            except ImportError as exc:
                raise ConfigError(
                    "reading a TOML config on Python 3.10 needs tomli: pip install tomli"
                ) from exc
        try:
            with open(p, "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read config file {p}: {exc}") from exc
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"config file {p} is not valid TOML: {exc}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {p} is not UTF-8 text: {exc}") from exc
        return cls.from_mapping(data, where=str(p))

    def resolved_token(self) -> str | None:
        """The token from ``token``, ``token_file`` or ``$SIGNRT_TOKEN`` (in that order).

        Surrounding whitespace is not part of a token (HTTP drops it from headers too).

        Raises:
            ConfigError: If ``token`` is blank, or ``token_file`` cannot be read or is empty.
        """
        if self.token is not None:
            token = self.token.strip()
            if not token:
                raise ConfigError(
                    "the token is empty or only whitespace; give a real secret, e.g. "
                    "--token $(openssl rand -hex 24)"
                )
            return token
        if self.token_file:
            try:
                text = Path(self.token_file).read_text().strip()
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"cannot read token file {self.token_file}: {exc}") from exc
            if not text:
                raise ConfigError(f"token file {self.token_file} is empty")
            return text.splitlines()[0].strip()
        env = os.environ.get(TOKEN_ENV, "").strip()
        return env or None

    def validate(self) -> None:
        """Check ranges and the token rule.

        Raises:
            ConfigError: If a value is out of range, or the server binds beyond localhost
                without a token.
        """
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"port must be 0-65535, got {self.port}")
        if self.queue_size < 1 or self.max_clients < 1 or self.max_message_bytes < 64:
            raise ConfigError("queue_size and max_clients must be >= 1, max_message_bytes >= 64")
        if self.max_connections < 4 or not self.header_timeout > 0:
            raise ConfigError(
                f"max_connections must be >= 4 and header_timeout > 0, got "
                f"{self.max_connections} and {self.header_timeout}"
            )
        if self.mode not in ("window", "segment"):
            raise ConfigError(f"mode must be 'window' or 'segment', got {self.mode!r}")
        if not self.host.strip():
            raise ConfigError("host is empty; give an address such as 127.0.0.1 or 0.0.0.0")
        if not is_loopback(self.host) and self.resolved_token() is None:
            raise ConfigError(
                f"binding to {self.host} exposes the sign stream to the network, so a token is "
                f"required: pass --token TOKEN, set {TOKEN_ENV}, or token_file in the config "
                "(or bind to 127.0.0.1)"
            )
        self.resolved_token()  # a blank token is refused on localhost too


def _setting_types() -> dict[str, Any]:
    return typing.get_type_hints(DaemonConfig)


def _type_name(kind: Any) -> str:
    return {bool: "true or false", int: "an integer", float: "a number", str: "a string"}.get(
        kind, getattr(kind, "__name__", str(kind))
    )


def _checked(where: str, key: str, hint: Any, value: Any) -> Any:
    """``value`` converted to the setting's type, or a ConfigError naming key and type."""
    kinds: tuple[Any, ...] = (hint,)
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        kinds = tuple(k for k in typing.get_args(hint) if k is not type(None))
    for kind in kinds:
        if kind is bool and isinstance(value, bool):
            return value
        if kind in (int, float) and isinstance(value, (int, float)) and not isinstance(
            value, bool
        ):
            if kind is int and not float(value).is_integer():
                continue
            return kind(value)
        if kind is str and isinstance(value, str):
            return value
    expected = " or ".join(_type_name(k) for k in kinds)
    shown = repr(value)
    if len(shown) > 60:
        shown = shown[:57] + "..."
    raise ConfigError(f"{where}: {key} must be {expected}, got {shown}")
