"""``qhpo report``: the summary and plots of a finished or running study."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "report",
        help="summarise a study of qhpo run and redraw its plots",
        description="Print the best trials, epochs saved and test accuracy of a study made by qhpo run (finished or "
        "still running) and redraw its plots (learning curves with stop points, epochs per trial).",
    )
    parser.add_argument("--storage", metavar="URL", help="the run's --storage (default qhpo-runs/qhpo.db)")
    parser.add_argument(
        "--study", metavar="NAME", default="cifar10-default", help="study name (default cifar10-default)"
    )
    parser.add_argument(
        "--out", type=Path, metavar="DIR", help="folder for the plots (default: the study's folder next to the storage)"
    )
    parser.add_argument("--top", type=int, default=5, metavar="K", help="best trials to list (default 5)")
    parser.set_defaults(handler=cmd_report)
    from qhpo.cli._run import _one_line_errors

    _one_line_errors(parser)


def cmd_report(args: argparse.Namespace) -> int:
    from rich.console import Console

    from qhpo.runner import draw_plots, load_study, print_summary, resolve_storage, summarize

    location = resolve_storage(args.storage, create=False)
    study = load_study(location, args.study)
    print_summary(summarize(study, top=args.top), Console(width=None if sys.stdout.isatty() else 120, highlight=False))
    paths = draw_plots(study, args.out or location.run_dir / args.study)
    print(f"plots: {paths[0]} and {paths[1]}")
    return 0
