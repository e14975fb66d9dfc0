"""Real installs into throwaway venvs: `pip install <checkout>` and `pip install -e <checkout>` both start freescore.

The venvs see the site-packages of the interpreter running the tests (Twisted, Autobahn, pip
... are not installed again), but freescore itself is imported from the install, never from
this checkout: the processes run in an empty folder with no PYTHONPATH.
"""

from __future__ import annotations

import asyncio
import importlib.util
import os
import re
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from harness import LOOPBACK_ANY_PORT, REPO, TWISTD, FreescoreProcess, quick_start

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "worldclass"))
from wc_client import read_demo  # noqa: E402

pytestmark = pytest.mark.integration
NOT_SHIPPED = (".git", "build", "dist", "*.egg-info", "__pycache__", ".hypothesis", ".pytest_cache", ".ruff_cache",
               "node_modules", "var", "freescore-data", "twistd.pid", "twistd.log*", "dropin.cache")


# freescore/, freescore-0.1.0.dist-info, __editable__.freescore-0.1.0.pth, __editable___freescore_0_1_0_finder.py
FREESCORE_ENTRY = re.compile(r"(__editable__[._]+)?freescore(?![a-z])")


def clean_env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    e.update(PYTHONUNBUFFERED="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    return e


def can_build_offline() -> bool:
    """setuptools with PEP 660 and wheel here: build without fetching them into an isolated env."""
    if importlib.util.find_spec("wheel") is None:
        return False
    import setuptools

    return int(setuptools.__version__.split(".")[0]) >= 64


def borrowed_site(tmp_path: Path) -> list[Path]:
    """This interpreter's site-packages as folders of links, leaving out any freescore installed there.

    Not `venv --system-site-packages`: that shows the base interpreter's folders, which lack
    the dependencies when the tests run in a venv, and hold the freescore that `.ci/run`
    installs, which would shadow an editable install (its finder comes after the path).
    """
    folders = [Path(p) for p in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        folders.append(Path(site.getusersitepackages()))
    views = []
    for i, folder in enumerate(f for f in folders if f.is_dir()):
        view = tmp_path / "borrowed" / str(i)
        view.mkdir(parents=True)
        for entry in folder.iterdir():
            if not FREESCORE_ENTRY.match(entry.name.lower()):
                (view / entry.name).symlink_to(entry)
        views.append(view)
    return views


def install(tmp_path: Path, editable: bool) -> Path:
    """A venv in tmp_path/venv with freescore installed from a copy of this checkout; returns its python."""
    source = tmp_path / "src"
    shutil.copytree(REPO, source, ignore=shutil.ignore_patterns(*NOT_SHIPPED))
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    (Path(purelib) / "borrowed.pth").write_text(
        "".join(f"import site; site.addsitedir({str(view)!r})\n" for view in borrowed_site(tmp_path)))
    args = [str(python), "-m", "pip", "install", "--no-deps", "--quiet"]
    if can_build_offline():
        args.append("--no-build-isolation")
    args += ["-e", str(source)] if editable else [str(source)]
    done = subprocess.run(args, env=clean_env(), cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    if not editable:
        shutil.rmtree(source)  # whatever runs now must come from the venv
    where = subprocess.run([str(python), "-c", "import freescore; print(freescore.__file__)"], env=clean_env(),
                           cwd=tmp_path, capture_output=True, text=True, check=True).stdout.strip()
    expected = source if editable else venv
    assert Path(where).is_relative_to(expected), where
    return python


def serves(tmp_path: Path, argv: list[str]) -> None:
    """From an empty folder: /status answers OK and the demo tournament is there."""
    folder = tmp_path / f"run-{len(list(tmp_path.glob('run-*')))}"
    folder.mkdir()
    with FreescoreProcess(None, folder, argv=[*argv, "--listen", LOOPBACK_ANY_PORT], environ=clean_env()) as fs:
        assert requests.get(fs.url() + "/status", timeout=5).text == "OK"
        ring, division = asyncio.run(read_demo(fs.url(0, "ws")))
    assert [d["name"] for d in ring["ring"]["divisions"]] == ["p01", "p02", "p03"]
    assert division["division"]["name"] == "p04"
    assert (folder / "freescore-data" / "worldclass" / "demo").is_dir()


def test_pip_install_then_twistd_freescore_from_an_empty_folder(tmp_path):
    """The README's first command: its twistd part, run by the venv's interpreter."""
    python = install(tmp_path, editable=False)
    twistd, *args = quick_start()[0].split("&&")[1].split()
    assert twistd == "twistd"
    serves(tmp_path, [str(python), "-c", TWISTD, *args])
    printed = subprocess.run([str(python.parent / "freescore"), "--print-config"], env=clean_env(), cwd=tmp_path,
                             capture_output=True, text=True, timeout=60)
    assert printed.returncode == 0 and printed.stdout.startswith("# freescore's embedded default")


def test_editable_install_starts_with_the_console_script_and_python_m(tmp_path):
    python = install(tmp_path, editable=True)
    serves(tmp_path, [str(python.parent / "freescore"), "-n", "--pidfile="])
    serves(tmp_path, [str(python), "-m", "freescore", "-n", "--pidfile="])
