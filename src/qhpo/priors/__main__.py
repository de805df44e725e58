"""Build or show a curve prior.

    python -m qhpo.priors build --tables src/qhpo/data/curves --out src/qhpo/data/priors/curves.json
    python -m qhpo.priors show [PRIOR]

``build`` reads every curve table (``*.csv`` with its JSON sidecar) of the folder and writes
the prior as JSON; the same tables give the same file, byte for byte. ``show`` lists the
tables a prior holds (the shipped one by default) with their content fingerprints.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from qhpo._errors import QhpoError


def main(argv: list[str] | None = None) -> int:
    from qhpo.curves import read_curve_table
    from qhpo.priors import BUILTIN, build_prior, describe, load_prior

    parser = argparse.ArgumentParser(prog="python -m qhpo.priors", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build = commands.add_parser("build", help="build a prior from a folder of curve tables")
    build.add_argument("--tables", type=Path, required=True, help="folder of curve tables (*.csv)")
    build.add_argument("--out", type=Path, required=True, help="the prior file to write (JSON)")
    show = commands.add_parser("show", help="list the tables of a prior")
    show.add_argument("prior", nargs="?", default=BUILTIN, help="prior file, folder of tables, or 'builtin'")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            files = sorted(args.tables.glob("*.csv")) if args.tables.is_dir() else []
            if not files:
                raise QhpoError(
                    f"the folder {args.tables} holds no curve table (*.csv); pass a folder of curve tables."
                )
            prior = build_prior(read_curve_table(p) for p in files)
            try:
                args.out.write_text(prior.to_json(), encoding="utf-8")
            except OSError as error:
                raise QhpoError(f"cannot write {args.out} ({error.strerror}); choose a writable path.") from None
            print(f"prior of {len(prior.tables)} tables written to {args.out}")
        else:
            prior = load_prior(args.prior)
        print("\n".join(describe(prior)))
    except QhpoError as error:
        print(f"python -m qhpo.priors: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
