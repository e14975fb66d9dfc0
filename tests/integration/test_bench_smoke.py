"""Every load generator in bench/ runs end to end with tiny parameters and reports load that got through.

A benchmark script breaks silently when what it drives changes (a setting grows stricter, a
route moves) and nobody notices until the next benchmark run. Each case here runs one script
as the lead would, with a second or two of load from a few clients, its report written to the
test's folder (never bench/reports), and checks the exit code and the counts in the report's
table: acknowledged scores, deliveries, samples. Timings and latencies are never asserted; they
mean nothing on a shared machine with parameters this small.

The scripts mostly wait (for their own servers, for the load's seconds), so a few run at once;
each case waits for its own run.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from redisproc import SKIP_REASON, find_redis_server

from harness import REPO, env

pytestmark = pytest.mark.integration

PARALLEL = 3
"""Scripts running at once: they spend most of their time waiting, and the machine has 2 cores."""
TIMEOUT = 180
"""Seconds one script may take before it counts as hung (a smoke run takes 1-15)."""

POOMSAE = ("--rings", "1", "--judges", "2", "--displays", "1", "--display-procs", "1", "--max-seconds", "1",
           "--paced-seconds", "2", "--drain", "0.5")
"""A ring of two judges and one display; the paced phase long enough for every judge's first score."""
FANOUT = ("--clients", "5", "--messages", "5")


@dataclass(frozen=True)
class Case:
    """One run of a bench/ script and what its report (or, for the in-process ones, its output) must show."""

    id: str
    script: str
    args: tuple[str, ...]
    figures: dict[str, int] = field(default_factory=dict)
    """Report column -> how many tables have it; every row's figure there is a count above 0."""
    printed: str = ""
    """For scripts without a report: a pattern of the standard output whose named groups are counts above 0."""
    needs: str = ""
    """`redis`, `node`, `valgrind` or `strace`: skipped without it, as the other tests that need it are."""


CASES = [  # the longest first, so the parallel runs end together
    Case("scale_load", "scale_load.py", ("--clients", "20", "--channels", "2", "--rates", "10", "--duration", "1",
                                         "--settle", "0.2"),
         {"deliveries / expected": 3}, needs="redis"),
    Case("gateway_load", "gateway_load.py", ("--clients", "4", "--push-rate", "20", "--send-rate", "10",
                                             "--duration", "1.5", "--warmup", "0.5", "--procs", "1"),
         {"samples": 1}),
    Case("grassroots_load", "grassroots_load.py", POOMSAE, {"scores acked": 1}),
    Case("worldclass_load cutoff", "worldclass_load.py", POOMSAE, {"scores acked": 1}),
    Case("worldclass_load se", "worldclass_load.py", ("--method", "se", *POOMSAE), {"scores acked": 1}),
    Case("worldclass_load sbs", "worldclass_load.py", ("--method", "sbs", *POOMSAE), {"scores acked": 1}),
    Case("freestyle_load", "freestyle_load.py", POOMSAE, {"scores acked": 1}),
    Case("ramp_load", "ramp_load.py", ("--clients", "20", "--devices", "20", "--procs", "1", "--channels", "2",
                                       "--rate", "10", "--window", "1", "--gap", "0.5", "--runs", "1",
                                       "--timeout", "60"),
         {"connected": 1, "deliveries / expected": 1}),
    Case("gc_churn", "gc_churn.py", ("--hold", "10", "--rate", "10", "--duration", "1"), {"closed": 1}),
    Case("events_load", "events_load.py", ("--scenario", "both", "--clients", "20", "--procs", "1",
                                           "--duration", "1", "--spread-rate", "20", "--heavy-rates", "10",
                                           "--settle", "0.2"),
         {"deliveries / expected": 2}),
    *(Case(f"fedmsg_load {client}", "fedmsg_load.py", ("--subscribers", "20", "--procs", "1", "--step-seconds", "1",
                                                       "--rates", "20", "--warmup", "0", "--client", client),
           {"delivered / expected": 1, "matched": 1}, needs="node" if client == "node" else "")
      for client in ("node", "python")),
    *(Case(f"clicker_load {client}", "clicker_load.py", ("--devices", "4", "--listeners", "2", "--per-listener",
                                                         "2", "--procs", "1", "--rates", "10", "--warmup", "0.5",
                                                         "--duration", "1", "--client", client),
           {"SCORE/s acked": 1})
      for client in ("raw", "websockets")),
    *(Case(f"clicker_load {' '.join(extra)}", "clicker_load.py", ("--devices", "4", "--listeners", "2",
                                                                  "--per-listener", "2", "--procs", "1", "--rates",
                                                                  "10", "--warmup", "0.5", "--duration", "1", *extra),
           {"SCORE/s acked": 1})
      for extra in (("--server", "floor"), ("--reactor", "asyncio"))),
    *(Case(f"hub_load{label}", "hub_load.py", ("--rates", "50", "--seconds", "0.5", *extra), {"delivered": 1},
           needs="redis")
      for label, extra in (("", ()), (" no-hiredis", ("--no-hiredis",)))),
    *(Case(f"clicker_instructions {server}", "clicker_instructions.py",
           ("--devices", "4", "--listeners", "0", "--rounds", "1", "--server", server),
           printed=rf"instructions per SCORE: (?P<instructions>\d+) \({server}, (?P<devices>4) devices",
           needs="valgrind")
      for server in ("freescore", "floor")),
    Case("clicker_fastpath", "clicker_fastpath.py", ("--devices", "4", "--listeners", "2", "--per-listener", "2",
                                                     "--scores", "200", "--repeats", "2"),
         printed=r"(?P<acked>\d+) of (?P=acked) SCOREs acknowledged"),
    *(Case(f"worldclass_calls {what}", "worldclass_calls.py",
           ("--count", what, "--rings", "1", "--judges", "2", "--displays", "1", "--warmup", "1", "--scores", "4"),
           printed=rf"(?P<scores>\d+) scores: (?P<per_score>\d+)[.\d]* {unit} per score",
           needs="strace" if what == "syscalls" else "")
      for what, unit in (("syscalls", "syscalls"), ("calls", "Python calls"))),
    Case("events_fanout_calls", "events_fanout_calls.py", FANOUT,
         printed=r"(?P<calls>\d+) calls for (?P<deliveries>25) deliveries"),
    Case("events_fanout_calls direct", "events_fanout_calls.py", (*FANOUT, "--direct"),
         printed=r"(?P<calls>\d+) calls for (?P<deliveries>25) deliveries"),
    Case("events_fanout_calls cpu", "events_fanout_calls.py", (*FANOUT, "--cpu", "--repeats", "2"),
         printed=r"CPU per delivery .* (?P<subscribers>5) subscribers, (?P<messages>5) messages a round"),
]
LIBRARIES = {"loadkit.py", "gcstats.py", "poomsae_load.py", "clicker_floor.py"}
"""bench/ modules the scripts import, not run on their own (poomsae_load through worldclass/freestyle,
clicker_floor through `clicker_load --server floor`)."""


def missing(case: Case) -> str | None:
    """Why this machine cannot run the case, or None."""
    if case.needs == "redis" and find_redis_server() is None:
        return SKIP_REASON
    if case.needs == "node" and shutil.which("node") is None:
        return "needs node (bash .ci/needs-events.sh)"
    if case.needs == "valgrind" and shutil.which("valgrind") is None:
        return "needs valgrind (bash .ci/needs-bench.sh)"
    if case.needs == "strace" and shutil.which("strace") is None:
        return "needs strace (bash .ci/needs-bench.sh)"
    return None


@dataclass
class Outcome:
    code: int
    stdout: str
    stderr: str
    report: Path

    def explain(self) -> str:
        return f"exit {self.code}\n--- stdout (end)\n{self.stdout[-3000:]}\n--- stderr (end)\n{self.stderr[-3000:]}"


def run_script(case: Case, folder: Path) -> Outcome:
    """The script as the lead runs it, from the repository root, its temporary files in `folder`."""
    (folder / "tmp").mkdir(parents=True)
    report = folder / "report.md"
    argv = [sys.executable, str(REPO / "bench" / case.script), *case.args]
    if case.figures:
        argv += ["--report", str(report)]
    proc = subprocess.Popen(argv, cwd=REPO, env={**env(), "TMPDIR": str(folder / "tmp")}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the script and the servers and clients it started
        stdout, stderr = proc.communicate()
        stderr += f"\n(killed after {TIMEOUT} s)"
    return Outcome(proc.returncode, stdout, stderr, report)


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Start every selected case's script at once (PARALLEL at a time); case id -> its future outcome."""
    selected = [item.callspec.params["case"] for item in request.session.items
                if item.module is request.module and hasattr(item, "callspec")]
    root = tmp_path_factory.mktemp("bench")
    with ThreadPoolExecutor(PARALLEL) as pool:
        yield {case.id: pool.submit(run_script, case, root / case.id.replace(" ", "-"))
               for case in CASES if case in selected and missing(case) is None}


def tables(text: str) -> list[list[dict[str, str]]]:
    """The Markdown tables of a report: each a list of rows, a row keyed by the header's cells."""
    found: list[list[dict[str, str]]] = []
    header: list[str] | None = None
    for line in text.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if header is None:
            header = cells
            found.append([])
        elif not set("".join(cells)) <= set("-: "):
            found[-1].append(dict(zip(header, cells, strict=False)))
    return found


def count(cell: str) -> int:
    """The count a cell starts with: `440`, `20 / 20`, `25/25`, `1,234`."""
    match = re.match(r"[*\s]*(\d[\d,]*)", cell)
    assert match, f"no count in {cell!r}"
    return int(match.group(1).replace(",", ""))


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bench_script_runs_and_reports_load_that_got_through(case: Case, runs: dict[str, Future[Outcome]]) -> None:
    reason = missing(case)
    if reason:
        pytest.skip(reason)
    outcome = runs[case.id].result()
    assert outcome.code == 0, outcome.explain()
    if case.printed:
        match = re.search(case.printed, outcome.stdout)
        assert match, f"no /{case.printed}/ in the output\n" + outcome.explain()
        assert all(int(value) > 0 for value in match.groupdict().values()), match.group(0)
        return
    assert outcome.report.is_file(), "no report written\n" + outcome.explain()
    text = outcome.report.read_text(encoding="utf-8")
    for column, expected in case.figures.items():
        with_column = [table for table in tables(text) if table and column in table[0]]
        assert len(with_column) == expected, f"{len(with_column)} tables with a {column!r} column:\n{text}"
        for table in with_column:
            figures = [count(row[column]) for row in table if row.get(column)]
            assert figures and all(figure > 0 for figure in figures), f"{column!r}: {figures}\n{text}"


def test_every_runnable_bench_script_has_a_case() -> None:
    """A new load generator in bench/ gets its smoke run here too."""
    scripts = {path.name for path in (REPO / "bench").glob("*.py")} - LIBRARIES
    assert scripts == {case.script for case in CASES}
