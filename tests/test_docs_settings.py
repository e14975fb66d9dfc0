"""Every settings table in the docs names exactly the keys the code accepts, with their types and defaults.

The keys come from the settings dataclasses `freescore.config` builds each table from
(`freescore/settings.py`, each service's `settings.py` through `freescore.registry`), so a new
field fails here until its table documents it, and a documented key the code dropped fails too.
A table is a markdown table whose first header cell is `key` or `setting`; a row may name several
keys (`` `a`, `b` ``) with as many defaults. A default written as a literal (`` `30.0` ``, `true`,
`` `"memory"` ``, `` `/ws` ``) must equal the code's; one in words (`unset`, `all listeners`,
`` `ping_interval` / 1000 ``) is for the reader and not compared.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

import pytest

from freescore import registry
from freescore.config import ConfigError, _coerce, parse
from freescore.settings import HttpSettings, HubSettings, ListenerSettings, RuntimeSettings, WebSocketSettings
from harness import REPO

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
HEADING = re.compile(r"^#{1,6}\s+(.*)$")
DELIMITER = re.compile(r"^\|(\s*:?-+:?\s*\|)+\s*$")
CELL_SPLIT = re.compile(r"(?<!\\)\|")
CODE = re.compile(r"`([^`]*)`")

# (file, a part of the heading above the table) -> the class whose fields the table documents.
# Each service's docs/<name>.md comes from the registry: all its settings tables together.
TABLES: dict[tuple[str, str], type] = {
    ("README.md", "`[[listen]]`"): ListenerSettings,
    ("README.md", "`[hub]`"): HubSettings,
    ("README.md", "`[http]`"): HttpSettings,
    ("README.md", "`[runtime]`"): RuntimeSettings,
    ("README.md", "Service tables"): WebSocketSettings,
    ("docs/redis.md", "`[hub]`"): HubSettings,
    ("docs/runtime.md", "`[runtime]`"): RuntimeSettings,
    **{(f"docs/{name}.md", ""): cls for name, cls in registry.SERVICES.items()},
}

# A configuration's tables -> the class each is built from (`freescore.config.parse`).
CONFIG_TABLES: dict[str, type] = {"listen": ListenerSettings, "hub": HubSettings, "http": HttpSettings,
                                  "runtime": RuntimeSettings, **registry.SERVICES}

# Keys a table need not name, each with the reason. Keep it short: a key a user can set belongs in its table.
EXEMPT: dict[tuple[str, str], str] = {}

# The words a type column uses for each annotation.
TYPE_WORDS = {bool: "bool", int: "int", float: "number", str: "string", Path: "path", tuple: "list"}


@dataclasses.dataclass
class Row:
    names: list[str]
    default: str | None  # the default cell, None in a table without one
    type: str | None
    line: str


def settings_tables(path: Path) -> list[tuple[str, list[Row]]]:
    """(heading, rows) of every settings table in a markdown file, outside fenced code."""
    lines = FENCE.sub(lambda m: "\n" * m.group(0).count("\n"), path.read_text(encoding="utf-8")).splitlines()
    found, heading, i = [], "", 0
    while i < len(lines):
        m = HEADING.match(lines[i])
        if m:
            heading = m.group(1)
        if lines[i].startswith("|") and i + 1 < len(lines) and DELIMITER.match(lines[i + 1]):
            header = [c.strip().lower() for c in CELL_SPLIT.split(lines[i].strip()[1:-1])]
            i += 2
            body = []
            while i < len(lines) and lines[i].startswith("|"):
                body.append(lines[i])
                i += 1
            if header[0] in ("key", "setting"):
                found.append((heading, [row(line, header) for line in body]))
            continue
        i += 1
    return found


def row(line: str, header: list[str]) -> Row:
    cells = [c.strip() for c in CELL_SPLIT.split(line.strip()[1:-1])]
    column = {name: cells[i] if i < len(cells) else "" for i, name in enumerate(header)}
    return Row(CODE.findall(cells[0]), column.get("default"), column.get("type"), line)


def split_top(cell: str) -> list[str]:
    """A cell split at its commas outside brackets, parentheses and code spans."""
    parts, depth, code, start = [], 0, False, 0
    for i, ch in enumerate(cell):
        if ch == "`":
            code = not code
        elif not code and ch in "([{":
            depth += 1
        elif not code and ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0 and not code:
            parts.append(cell[start:i].strip())
            start = i + 1
    parts.append(cell[start:].strip())
    return parts


def literal(cell: str, names: set[str]) -> tuple[bool, Any]:
    """(True, value) for a default written as a literal, (False, None) for one in words."""
    m = re.fullmatch(r"`([^`]*)`(?:\s+(?:ms|s)\b)?(?:\s*\(.*\))?", cell)
    if m is None:
        m = re.fullmatch(r"(true|false|-?\d[\d_]*(?:\.\d+)?)", cell)
    if m is None or m.group(1) in names:  # words, or a formula of another key
        return False, None
    text = m.group(1)
    try:
        return True, tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return True, text  # a bare string: a path, `auto`, `*`


def comparable(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, tuple):
        return [comparable(v) for v in value]
    return value


def code_defaults(cls: type) -> dict[str, Any]:
    """Each field's default as a table without the key gets it (limits a protocol key implies included)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    defaults = {name: f.default for name, f in fields.items() if f.default is not dataclasses.MISSING}
    required = {name: "" for name, f in fields.items() if f.default is dataclasses.MISSING}
    instance = cls(**required)
    if isinstance(instance, WebSocketSettings):
        defaults.update(instance.implied_limits())
    return defaults


def type_word(annotation: Any) -> str:
    origin = typing.get_origin(annotation) or annotation
    if origin in (typing.Union, types.UnionType):
        words = {type_word(a) for a in typing.get_args(annotation) if a is not type(None)}
        return words.pop() if len(words) == 1 else "/".join(sorted(words))
    return TYPE_WORDS[origin]


def documented(file: str, part: str) -> list[Row]:
    path = REPO / file
    tables = [rows for heading, rows in settings_tables(path) if part in heading]
    assert tables, f"{file}: no settings table under a heading with {part!r}"
    return [r for rows in tables for r in rows]


@pytest.mark.parametrize(("file", "part"), list(TABLES), ids=lambda x: x)
def test_docs_table_names_every_setting_with_its_type_and_default(file, part):
    cls = TABLES[file, part]
    hints = typing.get_type_hints(cls)
    fields = set(hints) & {f.name for f in dataclasses.fields(cls)}
    defaults = code_defaults(cls)
    rows = documented(file, part)
    named = [n for r in rows for n in r.names]
    where = f"{file} ({part or 'settings tables'}), {cls.__module__}.{cls.__qualname__}"
    missing = sorted(fields - set(named) - {k for f, k in EXEMPT if f == file})
    unknown = sorted(set(named) - fields)
    twice = sorted({n for n in named if named.count(n) > 1})
    assert not missing, f"{where}: settings the code has and the table does not name: {missing}"
    assert not unknown, f"{where}: the table names keys the code does not have: {unknown}"
    assert not twice, f"{where}: named in more than one row: {twice}"
    wrong = []
    for r in rows:
        if r.type is not None and len(r.names) == 1:
            want = type_word(hints[r.names[0]])
            if not r.type.lower().startswith(want):
                wrong.append(f"{r.names[0]}: type {r.type!r}, the code's is {want}")
        if not r.default:
            continue
        cells = split_top(r.default) if len(r.names) > 1 else [r.default]
        if len(cells) != len(r.names):
            wrong.append(f"{r.names}: {len(cells)} defaults for {len(r.names)} keys in {r.line!r}")
            continue
        for name, cell in zip(r.names, cells, strict=True):
            is_literal, value = literal(cell, fields)
            if is_literal and name in defaults and comparable(value) != comparable(defaults[name]):
                wrong.append(f"{name}: default {cell}, the code's is {comparable(defaults[name])!r}")
    assert not wrong, f"{where}:\n  " + "\n  ".join(wrong)


def test_every_table_a_configuration_takes_has_a_docs_table():
    """The tables `freescore.config` accepts (its own list, from its error for an unknown one) are CONFIG_TABLES,
    and each table's class has a settings table in the docs (TABLES), so a new table cannot go undocumented."""
    with pytest.raises(ConfigError) as refused:
        parse("[no_such_table]\n")
    known = re.search(r"\(known: (.*)\)", refused.value.message)
    assert known is not None, refused.value.message
    assert sorted(known.group(1).split(", ")) == sorted(CONFIG_TABLES)
    undocumented = [name for name, cls in CONFIG_TABLES.items() if cls not in TABLES.values()]
    assert not undocumented, f"tables with no settings table in README.md or docs/: {undocumented}"
    for path in [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]:
        file = str(path.relative_to(REPO))
        for heading, _ in settings_tables(path):
            assert any(f == file and part in heading for f, part in TABLES), (
                f"{file}: the settings table under {heading!r} is not in TABLES, so nothing checks it")


def assert_real_setting(cls: type, key: str, value: Any, where: str) -> None:
    """`key = value` is a key of `cls` with a value of its type (as `freescore.config` reads it)."""
    hints = typing.get_type_hints(cls)
    assert key in hints, f"{where}: {key!r} is not a setting of {cls.__module__}.{cls.__qualname__}"
    _coerce(value, hints[key], key, Path("/"))  # SettingError for a value of the wrong type


@pytest.mark.parametrize("doc", [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))],
                         ids=lambda p: str(p.relative_to(REPO)))
def test_toml_examples_in_the_docs_name_real_settings(doc):
    blocks = re.findall(r"^```toml\n(.*?)^```", doc.read_text(encoding="utf-8"), re.MULTILINE | re.DOTALL)
    for number, block in enumerate(blocks, 1):
        where = f"{doc.relative_to(REPO)}, TOML example {number}"
        for table, content in tomllib.loads(block).items():
            assert table in CONFIG_TABLES, f"{where}: no table [{table}] in a configuration"
            for values in content if isinstance(content, list) else [content]:
                for key, value in values.items():
                    assert_real_setting(CONFIG_TABLES[table], key, value, where)
