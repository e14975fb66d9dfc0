"""TOML configuration -> frozen, validated settings.

Every error names the file and the key, so start-up can stop with one line
`freescore: FILE: KEY: what is wrong`.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


class ConfigError(Exception):
    """A configuration problem, rendered as `FILE: KEY: message`."""

    def __init__(self, file: str | Path, key: str, message: str) -> None:
        self.file = str(file)
        self.key = key
        self.message = message
        super().__init__(f"{self.file}: {key}: {message}")


class SettingError(ValueError):
    """Raised by a settings class's `validate()`; the loader adds file and key."""

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}")


@dataclass(frozen=True)
class ServiceSettings:
    """Keys every service table has."""

    enabled: bool = True
    listen: tuple[int | str, ...] = ()

    def validate(self, base: Path) -> "ServiceSettings":
        """Check cross-field rules; return self or a copy with resolved values."""
        return self


@dataclass(frozen=True)
class ListenerSettings:
    endpoint: str
    name: str = ""
    certificate: Path | None = None
    private_key: Path | None = None
    ciphers: str = ""
    """OpenSSL cipher string for TLS 1.2; "" keeps freescore's forward-secret AEAD default."""
    metrics: bool | None = None
    """Serve /metrics here; None: only on a loopback listener."""
    status: bool = True

    @property
    def tls(self) -> bool:
        return self.certificate is not None

    @property
    def serves_metrics(self) -> bool:
        return is_loopback(self) if self.metrics is None else self.metrics


def is_loopback(listener: ListenerSettings) -> bool:
    """Does this endpoint accept connections from this host only?"""
    kind, _, rest = listener.endpoint.partition(":")
    if kind == "unix":
        return True
    if kind not in ("tcp", "tcp6"):
        return False
    for part in re.split(r"(?<!\\):", rest):  # Twisted escapes colons in values as "\:"
        key, eq, value = part.replace("\\:", ":").partition("=")
        if eq and key == "interface":
            value = value.strip("[]")
            if value == "localhost":
                return True
            try:
                return ipaddress.ip_address(value).is_loopback
            except ValueError:
                return False
    return False


@dataclass(frozen=True)
class HubSettings:
    backend: str = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    # Redis backend only (docs/redis.md):
    node: str = ""  # unique name of this node; default host:pid
    presence_ttl: float = 15.0  # a crashed node's members disappear after this (s)
    timeout: float = 5.0  # connect and reply timeout (s)
    retry_min: float = 0.5  # reconnect backoff, first delay (s)
    retry_max: float = 10.0  # reconnect backoff, longest delay (s)

    def validate(self, base: Path) -> "HubSettings":
        if self.backend not in ("memory", "redis"):
            raise SettingError("backend", f"must be 'memory' or 'redis', not {self.backend!r}")
        for key in ("presence_ttl", "timeout", "retry_min", "retry_max"):
            if getattr(self, key) <= 0:
                raise SettingError(key, "must be positive")
        if self.retry_max < self.retry_min:
            raise SettingError("retry_max", "must be at least retry_min")
        if self.backend == "redis":
            from freescore.hub.redis import parse_url

            try:
                parse_url(self.url)
            except ValueError as e:
                raise SettingError("url", str(e)) from None
        return self


@dataclass(frozen=True)
class HttpSettings:
    cors_origin: str = "*"
    shutdown_timeout: float = 3.0
    max_body: int = 4 * 1024 * 1024
    header_timeout: float = 10.0  # a request's headers must be in within this of the accept or first byte (s)
    idle_timeout: float = 60.0  # a keep-alive connection with no request in flight closes after this (s)

    def validate(self, base: Path) -> "HttpSettings":
        for key in ("shutdown_timeout", "header_timeout", "idle_timeout"):
            if getattr(self, key) <= 0:
                raise SettingError(key, "must be positive")
        if self.max_body < 1024:
            raise SettingError("max_body", "must be at least 1024 bytes")
        return self


@dataclass(frozen=True)
class RuntimeSettings:
    """Process tuning (docs/runtime.md)."""

    gc_freeze: bool = True  # freeze what start-up built: later collections skip it
    gc_thresholds: tuple[int, ...] = (20000, 50, 100)  # [] leaves the interpreter's (700, 10, 10)
    gc_full_after_closes: int = 1000  # full pass after this many closes (and >= the open count); 0: never
    gc_full_interval: float = 600.0  # full pass at least this often (s); 0: never

    def validate(self, base: Path) -> "RuntimeSettings":
        t = self.gc_thresholds
        if t and len(t) != 3:
            raise SettingError("gc_thresholds", "give three integers [young, middle, old], or [] for the defaults")
        if t and (t[0] < 100 or t[1] < 1 or t[2] < 1):
            raise SettingError("gc_thresholds", "young must be at least 100, middle and old at least 1")
        if self.gc_full_after_closes < 0:
            raise SettingError("gc_full_after_closes", "must be 0 (off) or positive")
        if self.gc_full_interval < 0:
            raise SettingError("gc_full_interval", "must be 0 (off) or positive")
        return self


@dataclass(frozen=True)
class Config:
    file: Path
    listeners: tuple[ListenerSettings, ...]
    hub: HubSettings = HubSettings()
    http: HttpSettings = HttpSettings()
    runtime: RuntimeSettings = RuntimeSettings()
    services: Mapping[str, ServiceSettings] = field(default_factory=dict)

    def listeners_for(self, service: str) -> tuple[int, ...]:
        """Indexes of the listeners a service is mounted on."""
        wanted = self.services[service].listen
        if not wanted:
            return tuple(range(len(self.listeners)))
        indexes = []
        for ref in wanted:
            if isinstance(ref, int):
                indexes.append(ref)
            else:
                indexes.extend(i for i, lst in enumerate(self.listeners) if lst.name == ref)
        return tuple(sorted(set(indexes)))


def _type_name(tp: Any) -> str:
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string", Path: "a path string"}.get(
        tp, getattr(tp, "__name__", str(tp))
    )


def _coerce(value: Any, tp: Any, key: str, base: Path) -> Any:
    """Check `value` against the annotation `tp`, returning the typed value."""
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(tp)
        if value is None and type(None) in options:
            return None
        errors = []
        for option in options:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, key, base)
            except SettingError as e:
                errors.append(e.message)
        raise SettingError(key, " or ".join(errors))
    if origin is tuple:
        (item_tp, _ellipsis) = typing.get_args(tp)
        if not isinstance(value, list):
            raise SettingError(key, f"must be a list, not {type(value).__name__}")
        return tuple(_coerce(v, item_tp, f"{key}[{i}]", base) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise SettingError(key, f"must be a table, not {type(value).__name__}")
        return dict(value)
    if tp is bool:
        if not isinstance(value, bool):
            raise SettingError(key, f"must be a boolean (true/false), not {value!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SettingError(key, f"must be an integer, not {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SettingError(key, f"must be a number, not {value!r}")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise SettingError(key, f"must be a string, not {value!r}")
        return value
    if tp is Path:
        if not isinstance(value, str) or not value:
            raise SettingError(key, f"must be a path string, not {value!r}")
        p = Path(value)
        return p if p.is_absolute() else (base / p)
    raise SettingError(key, f"unsupported setting type {tp!r}")


T = typing.TypeVar("T")


def build(cls: type[T], table: Any, file: Path, section: str, base: Path | None = None) -> T:
    """Build the frozen dataclass `cls` from a TOML table, or raise ConfigError.

    Relative paths resolve against `base`, by default the file's folder.
    """
    if not isinstance(table, dict):
        raise ConfigError(file, section, f"must be a table, not {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    base = file.parent if base is None else base
    kwargs: dict[str, Any] = {}
    for key, value in table.items():
        if key not in fields:
            known = ", ".join(sorted(fields))
            raise ConfigError(file, f"{section}.{key}", f"unknown key (known keys: {known})")
        try:
            kwargs[key] = _coerce(value, hints[key], key, base)
        except SettingError as e:
            raise ConfigError(file, f"{section}.{e.key}", e.message) from None
    for name, f in fields.items():
        if name not in kwargs and f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ConfigError(file, f"{section}.{name}", "is required")
    try:
        obj = cls(**kwargs)
        validate = getattr(obj, "validate", None)
        if validate is not None:
            obj = validate(base)
    except SettingError as e:
        raise ConfigError(file, f"{section}.{e.key}", e.message) from None
    return obj


def _check_endpoint(file: Path, key: str, endpoint: str) -> None:
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    try:
        serverFromString(reactor, endpoint)
    except Exception as e:  # Twisted raises ValueError, KeyError, TypeError...
        raise ConfigError(file, key, f"cannot parse endpoint {endpoint!r}: {e!r}") from None


def _load_listener(file: Path, index: int, table: Any, base: Path | None = None) -> ListenerSettings:
    key = f"listen[{index}]"
    listener = build(ListenerSettings, table, file, key, base)
    _check_endpoint(file, f"{key}.endpoint", listener.endpoint)
    if (listener.certificate is None) != (listener.private_key is None):
        raise ConfigError(file, f"{key}.certificate", "certificate and private_key go together")
    for attr in ("certificate", "private_key"):
        path = getattr(listener, attr)
        if path is not None and not path.is_file():
            raise ConfigError(file, f"{key}.{attr}", f"no such file: {path}")
    if listener.ciphers and not listener.tls:
        raise ConfigError(file, f"{key}.ciphers", "only for a TLS listener (with certificate and private_key)")
    if listener.tls:
        from freescore.listeners import TLSConfigError, check_ciphers, load_tls_context

        try:
            check_ciphers(listener.ciphers)
        except TLSConfigError as e:
            raise ConfigError(file, f"{key}.ciphers", str(e)) from None
        try:
            load_tls_context(listener.certificate, listener.private_key, listener.ciphers)  # type: ignore[arg-type]
        except TLSConfigError as e:
            raise ConfigError(file, f"{key}.certificate", str(e)) from None
    if listener.tls and listener.endpoint.split(":", 1)[0] in ("ssl", "tls"):
        raise ConfigError(
            file, f"{key}.endpoint", "give a plain endpoint (tcp:8443) with certificate/private_key, not ssl:"
        )
    return listener


def parse(text: str, file: str | Path = "<config>", base: Path | None = None) -> Config:
    """Parse and validate configuration text; relative paths resolve against `base` (default: the file's folder).

    The embedded default gives the current folder as `base`, so its data lands where freescore was started.
    """
    from freescore import registry

    file = Path(file)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "(syntax)", str(e)) from None
    services = registry.settings_classes()
    known = {"listen", "hub", "http", "runtime", *services}
    for key in raw:
        if key not in known:
            raise ConfigError(file, key, f"unknown table (known: {', '.join(sorted(known))})")
    listen = raw.get("listen", [])
    if not isinstance(listen, list) or not listen:
        raise ConfigError(file, "listen", "give at least one [[listen]] table with an endpoint")
    listeners = tuple(_load_listener(file, i, t, base) for i, t in enumerate(listen))
    names = [lst.name for lst in listeners if lst.name]
    if len(names) != len(set(names)):
        raise ConfigError(file, "listen.name", "listener names must be unique")
    hub = build(HubSettings, raw.get("hub", {}), file, "hub", base)
    http = build(HttpSettings, raw.get("http", {}), file, "http", base)
    runtime = build(RuntimeSettings, raw.get("runtime", {}), file, "runtime", base)
    chosen: dict[str, ServiceSettings] = {}
    for name, cls in services.items():
        if name not in raw:
            continue
        settings = build(cls, raw[name], file, name, base)
        for i, ref in enumerate(settings.listen):
            if isinstance(ref, int) and not 0 <= ref < len(listeners):
                raise ConfigError(file, f"{name}.listen[{i}]", f"no listener with index {ref}")
            if isinstance(ref, str) and ref not in names:
                raise ConfigError(file, f"{name}.listen[{i}]", f"no listener named {ref!r}")
        if settings.enabled:
            chosen[name] = settings
    config = Config(file=file, listeners=listeners, hub=hub, http=http, runtime=runtime, services=chosen)
    for name in chosen:
        registry.check_config(name, config)
    return config


def load(path: str | Path) -> Config:
    """Read and validate a configuration file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(path, "(file)", "no such file") from None
    except OSError as e:
        raise ConfigError(path, "(file)", e.strerror or str(e)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(path, "(file)", f"not UTF-8: {e}") from None
    return parse(text, path.resolve())
