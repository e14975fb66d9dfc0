"""TOML configuration -> frozen, validated settings.

Every error names the file and the key, so start-up can stop with one line
`freescore: FILE: KEY: what is wrong`. The values are `freescore.settings`;
each service's table is its package's `settings.py` (see `registry`), so
parsing needs no reactor and imports no adapter. What needs Twisted to check
(endpoint strings, ciphers, PEM files) `listeners.check` checks.
"""

from __future__ import annotations

import dataclasses
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from freescore import registry
from freescore.settings import (
    Config,
    ConfigError,
    HttpSettings,
    HubSettings,
    ListenerSettings,
    RuntimeSettings,
    ServiceSettings,
    SettingError,
    WebSocketSettings,
    is_loopback,
)

__all__ = [
    "Config", "ConfigError", "HttpSettings", "HubSettings", "ListenerSettings", "RuntimeSettings",
    "ServiceSettings", "SettingError", "is_loopback", "load", "parse",
]


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
        if isinstance(obj, WebSocketSettings):
            obj = obj.resolve_limits(frozenset(kwargs))
    except SettingError as e:
        raise ConfigError(file, f"{section}.{e.key}", e.message) from None
    return obj


def _load_listener(file: Path, index: int, table: Any, base: Path | None = None) -> ListenerSettings:
    key = f"listen[{index}]"
    listener = build(ListenerSettings, table, file, key, base)
    if (listener.certificate is None) != (listener.private_key is None):
        raise ConfigError(file, f"{key}.certificate", "certificate and private_key go together")
    for attr in ("certificate", "private_key"):
        path = getattr(listener, attr)
        if path is not None and not path.is_file():
            raise ConfigError(file, f"{key}.{attr}", f"no such file: {path}")
    if listener.ciphers and not listener.tls:
        raise ConfigError(file, f"{key}.ciphers", "only for a TLS listener (with certificate and private_key)")
    if listener.tls and listener.endpoint.split(":", 1)[0] in ("ssl", "tls"):
        raise ConfigError(
            file, f"{key}.endpoint", "give a plain endpoint (tcp:8443) with certificate/private_key, not ssl:"
        )
    return listener


def parse(text: str, file: str | Path = "<config>", base: Path | None = None) -> Config:
    """Parse and validate configuration text; relative paths resolve against `base` (default: the file's folder).

    The embedded default gives the current folder as `base`, so its data lands where freescore was started.
    What needs Twisted to check (endpoint strings, ciphers, PEM files) `listeners.check` checks.
    """
    file = Path(file)
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(file, "(syntax)", str(e)) from None
    services = registry.SERVICES
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
    for name, settings in chosen.items():
        try:
            settings.check(config, name)
        except SettingError as e:
            raise ConfigError(file, e.key, e.message) from None
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
