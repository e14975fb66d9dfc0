"""The documentation stands alone: every link resolves inside the repository, every doc is reachable
from README.md, and the README's quick start is the two commands that CI and the install tests run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from harness import REPO, quick_start

DOCS = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,}).*?^ {0,3}\1[ \t]*$", re.MULTILINE | re.DOTALL)
CODE_SPAN = re.compile(r"(`+)(?!`).+?(?<!`)\1(?!`)", re.DOTALL)
LINK_TARGETS = (
    re.compile(r"\]\(\s*<?([^)\s>]*)>?(?:\s+[\"'(][^)]*)?\)"),  # [text](target "title"), ![alt](target)
    re.compile(r"^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)", re.MULTILINE),  # [label]: target
    re.compile(r"<((?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)[^>\s]*)>"),  # <https://...>
    re.compile(r"\bhref\s*=\s*[\"']([^\"']*)[\"']", re.IGNORECASE),
)
OUTSIDE = re.compile(r"(\.\./)+shared\b|\bshared/specs\b|(?<![\w/])specs/\w+\.md")
SCHEME = re.compile(r"^(?:[a-zA-Z][a-zA-Z0-9+.-]*:|//)")


def prose(text: str) -> str:
    """The text without fenced code blocks and code spans: what a renderer turns into links."""
    return CODE_SPAN.sub("", FENCE.sub("", text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"`([^`]*)`", r"\1", heading)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"[^\w\- ]", "", text.strip().lower()).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in FENCE.sub("", path.read_text(encoding="utf-8")).splitlines():
        m = re.match(r"^ {0,3}#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m.group(1))
        n = seen.get(base, 0)
        seen[base] = n + 1
        found.add(base if n == 0 else f"{base}-{n}")
    return found


def links(path: Path) -> list[str]:
    text = prose(path.read_text(encoding="utf-8"))
    return [m.group(1) for rx in LINK_TARGETS for m in rx.finditer(text)]


def resolve(source: Path, target: str) -> tuple[Path, str]:
    """(file, anchor) a relative link points at; raises AssertionError for one that leaves the repository."""
    where = f"{source.relative_to(REPO)}: link {target!r}"
    assert not SCHEME.match(target), f"{where} leaves the repository (keep docs self-contained)"
    assert not target.startswith("/"), f"{where} is an absolute path"
    file_part, _, anchor = target.partition("#")
    file = (source.parent / file_part).resolve() if file_part else source
    assert file.is_relative_to(REPO), f"{where} points outside the repository"
    assert file.exists(), f"{where}: no such file"
    return file, anchor


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_link_resolves_inside_the_repository(doc):
    for target in links(doc):
        file, anchor = resolve(doc, target)
        if anchor:
            assert file.suffix == ".md", f"{doc.name}: #{anchor} on a file that is not markdown"
            assert anchor in anchors(file), f"{doc.relative_to(REPO)}: no heading #{anchor} in {file.name}"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_doc_refers_to_files_outside_the_repository(doc):
    for number, line in enumerate(doc.read_text(encoding="utf-8").splitlines(), 1):
        assert not OUTSIDE.search(line), f"{doc.relative_to(REPO)}:{number} refers outside the repository: {line}"


def test_every_doc_is_reachable_from_the_readme():
    reached, todo = set(), [REPO / "README.md"]
    while todo:
        doc = todo.pop()
        if doc in reached:
            continue
        reached.add(doc)
        for target in links(doc):
            file, _ = resolve(doc, target)
            if file.suffix == ".md":
                todo.append(file)
    missing = [str(d.relative_to(REPO)) for d in DOCS if d not in reached]
    assert not missing, f"not linked from README.md or any doc it links: {missing}"


def test_link_checker_sees_what_a_renderer_sees(tmp_path):
    doc = tmp_path / "x.md"
    doc.write_text("# A `b` (c)\n\n[one](y.md#z) `[no](skip.md)` ![img](p.png)\n\n```\n[no](fenced.md)\n```\n"
                   "[ref]: r.md\n<https://example.org>\n")
    assert links(doc) == ["y.md#z", "p.png", "r.md", "https://example.org"]
    assert anchors(doc) == {"a-b-c"}
    with pytest.raises(AssertionError, match="leaves the repository"):
        resolve(REPO / "README.md", "https://example.org")
    with pytest.raises(AssertionError, match="outside the repository"):
        resolve(REPO / "README.md", "../shared/DESIGN.md")


def test_quick_start_is_two_commands_and_ci_runs_the_second():
    install_and_run, install_and_test = quick_start()
    assert install_and_run == "python3 -m pip install . && twistd -n --pidfile= freescore"
    ci = [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()
          if line.strip() and not line.lstrip().startswith("#")]
    assert ci[-1] == install_and_test == "python3 -m pip install '.[test]' && python3 -m pytest"
