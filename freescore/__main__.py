"""`freescore ARGS` and `python -m freescore ARGS`: `twistd ARGS freescore` as one command.

twistd finds `twistd freescore` by scanning `twisted/plugins/` folders on
sys.path, which an editable install (`pip install -e .`) does not put there.
This runs twistd's own runner with the freescore plugin handed over directly,
so every twistd option works as with `twistd freescore`. freescore's own options
(--config, --listen, --print-config) may stand anywhere; the rest go to twistd.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

USAGE = """\
Usage: freescore [twistd options] [freescore options]

Runs `twistd [twistd options] freescore [freescore options]`, also where twistd
cannot find its freescore plugin (editable installs). Without -n it daemonizes,
as twistd does: use `freescore -n --pidfile=` in the foreground.
"""


def _takes_value(options: Any) -> tuple[dict[str, bool], dict[str, bool]]:
    """Long and short option names of a usage.Options, each mapped to whether it takes a value."""
    long = {name.rstrip("="): name.endswith("=") for name in options.longOpt}
    short: dict[str, bool] = {}
    letters = options.shortOpt
    for i, letter in enumerate(letters):
        if letter != ":":
            short[letter] = letters[i + 1:i + 2] == ":"
    return long, short


def split_args(args: Sequence[str], own: Any, twistd: Any) -> tuple[list[str], list[str]]:
    """(twistd's arguments, freescore's arguments) from one mixed command line."""
    own_long, own_short = _takes_value(own)
    tw_long, tw_short = _takes_value(twistd)
    to_twistd: list[str] = []
    to_own: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        target, needs_value = to_twistd, False
        if arg.startswith("--") and len(arg) > 2:
            name, eq, _ = arg[2:].partition("=")
            if name in own_long:
                target, needs_value = to_own, own_long[name] and not eq
            else:
                needs_value = tw_long.get(name, False) and not eq
        elif arg.startswith("-") and len(arg) > 1:
            letter = arg[1]
            if letter in own_short:
                target, needs_value = to_own, own_short[letter] and len(arg) == 2
            else:
                needs_value = tw_short.get(arg[-1], False) and all(tw_short.get(c) is False for c in arg[1:-1])
        target.append(arg)
        if needs_value and i + 1 < len(args):
            target.append(args[i + 1])
            i += 1
        i += 1
    return to_twistd, to_own


def main(argv: Sequence[str] | None = None) -> None:
    """Run freescore through twistd's runner; exits like twistd does."""
    from twisted.application import app
    from twisted.application.service import IServiceMaker
    from twisted.plugin import getPlugins
    from twisted.scripts.twistd import ServerOptions, runApp

    from freescore import tap

    def plugins(interface: Any, package: Any = None) -> list[Any]:
        if interface is IServiceMaker:
            return [tap.serviceMaker]
        return list(getPlugins(interface, package))

    class FreescoreServerOptions(ServerOptions):  # type: ignore[misc]
        _getPlugins = staticmethod(plugins)

    args = list(sys.argv[1:] if argv is None else argv)
    if "--help" in args:
        sys.stdout.write(f"{USAGE}\nfreescore {tap.Options().getUsage()}\ntwistd {FreescoreServerOptions().getUsage()}")
        raise SystemExit(0)
    to_twistd, to_own = split_args(args, tap.Options(), FreescoreServerOptions())
    sys.argv = ["freescore", *to_twistd, "freescore", *to_own]
    app.run(runApp, FreescoreServerOptions)


if __name__ == "__main__":
    main()
