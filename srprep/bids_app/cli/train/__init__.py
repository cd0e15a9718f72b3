"""``srprep-train METHOD BIDS_DIR OUTPUT_DIR``: train a learned method on your data.

The trained weights are written in the official checkpoint format to
``OUTPUT_DIR/<method>/``, so the BIDS App uses them with ``--weights-dir OUTPUT_DIR``.
One module per method (its arguments and its run), sharing :mod:`.common`.
"""
from __future__ import annotations

import argparse
import logging
import sys

from . import aid, babyai, easysr, pccnn

#: method -> module with ``add_parser(subparsers)`` and ``run(opts)``
COMMANDS = {"babyai": babyai, "easysr": easysr, "pccnn": pccnn, "aid": aid}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="srprep-train", description=__doc__.split("\n\n")[0])
    sub = p.add_subparsers(dest="method", required=True)
    for module in COMMANDS.values():
        module.add_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    opts = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s",
                        datefmt="%H:%M:%S")
    return COMMANDS[opts.method].run(opts)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
