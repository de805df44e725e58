"""Entry point of the ``qhpo`` command.

Each sub-command lives in its own module ``qhpo.cli._<name>`` with a ``register(subparsers)``
function that adds its parser and sets ``handler`` to the module's ``cmd_<name>(args) -> int``. Errors a
user can cause (:class:`qhpo.QhpoError`) are reported as one sentence on stderr with exit
status 2; nothing a user types should end in a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from qhpo import __version__
from qhpo._environment import MALLOC_TUNABLES, module_command
from qhpo._errors import QhpoError

# Sub-command modules, in the order ``qhpo --help`` lists them.
_COMMANDS: tuple[str, ...] = (
    "run",
    "report",
    "predict",
    "bench",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qhpo",
        description=(
            "Hyperparameter optimisation with early stopping by a QUBO-trained support "
            "vector regressor (quantum or simulated annealer)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"qhpo {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMANDS:
        module = importlib.import_module(f"qhpo.cli._{name}")
        module.register(sub)
    return parser


def _restart_with_malloc_tunables() -> None:
    """Re-execute ``qhpo run`` once with :data:`MALLOC_TUNABLES` set (Linux, console use only)."""
    if sys.platform != "linux" or sys.argv[1:2] != ["run"] or "GLIBC_TUNABLES" in os.environ:
        return
    env = dict(os.environ, GLIBC_TUNABLES=MALLOC_TUNABLES)
    try:
        os.execve(sys.executable, module_command("qhpo", *sys.argv[1:]), env)
    except OSError:
        return  # training still works, only slower


def main(argv: list[str] | None = None) -> int:
    if argv is None:
        _restart_with_malloc_tunables()
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "handler", None) is None:
        parser.print_help()
        return 0
    _quiet_optuna()
    try:
        return int(args.handler(args) or 0)
    except QhpoError as error:
        print(f"qhpo: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("qhpo: interrupted; completed trials are kept in the study storage.", file=sys.stderr)
        return 130


def _quiet_optuna() -> None:
    """The command prints its own progress: Optuna's per-trial INFO lines would drown it.

    Only the command sets this, for its own process; qhpo's library functions leave a
    user's logging settings alone.
    """
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
