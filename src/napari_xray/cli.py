"""The ``napari-xray`` command line: ``compare``, ``view`` and ``batch``.

Each subcommand lives beside the code it drives; this module only assembles
them. Errors the user can fix (ValueError and its kin, raised with a message
that says what to do) end in a one-line message and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from . import __version__

EXIT_USAGE = 2


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with every subcommand registered."""
    from napari_xray import compare
    from napari_xray.batch import run as batch
    from napari_xray.plugin import viewer as viewer_cli

    parser = argparse.ArgumentParser(
        prog="napari-xray",
        description="Explore chest X-rays with edge filters: headless comparison, napari "
        "viewer and Dask batch processing.",
    )
    parser.add_argument("--version", action="version", version=f"napari-xray {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    compare.add_parser(subparsers)
    viewer_cli.add_parser(subparsers)
    batch.add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (0 on success)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("napari-xray: interrupted", file=sys.stderr)
        return 130
    except (ValueError, KeyError, OSError, RuntimeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"napari-xray {args.command}: error: {message}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
