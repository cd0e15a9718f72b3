"""``srprep-weights list|fetch|verify|path``: manage published model weights."""
from __future__ import annotations

import argparse
import json
import sys

from srprep.core.errors import ConfigurationError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="srprep-weights",
                                     description="Download and check published model weights.")
    parser.add_argument("--weights-dir", default=None,
                        help="cache folder (default $SRPREP_WEIGHTS_DIR or ~/.cache/srprep/weights)")
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="known weights, their URLs and whether they are cached")
    fetch = sub.add_parser("fetch", help="download weights into the cache")
    fetch.add_argument("names", nargs="+", help="weights names, a method name, or 'all'")
    fetch.add_argument("--force", action="store_true", help="download again")
    fetch.add_argument("--url", default=None, help="download from this URL instead (mirror)")
    verify = sub.add_parser("verify", help="check checksum and state_dict structure")
    verify.add_argument("names", nargs="+")
    path = sub.add_parser("path", help="print the cached file's path")
    path.add_argument("name")
    return parser


def _expand(names: list[str]) -> list[str]:
    from srprep.models.weights import REGISTRY

    out = []
    for n in names:
        if n == "all":
            out += list(REGISTRY)
        elif n in REGISTRY:
            out.append(n)
        elif any(w.method == n for w in REGISTRY.values()):
            out += [k for k, w in REGISTRY.items() if w.method == n]
        else:
            raise ConfigurationError(f"unknown weights or method {n!r}")
    return list(dict.fromkeys(out))


def main(argv: list[str] | None = None) -> int:
    from srprep.models import weights

    opts = build_parser().parse_args(argv)
    try:
        if opts.command == "list":
            root = weights.weights_dir(opts.weights_dir)
            print(f"# cache: {root}")
            for name, w in weights.REGISTRY.items():
                cached = weights.local_path(name, opts.weights_dir).is_file()
                print(f"{name:20s} {'cached ' if cached else 'missing'} {w.method:7s} {w.url}")
        elif opts.command == "fetch":
            names = _expand(opts.names)
            if opts.url and len(names) != 1:
                raise ConfigurationError("--url needs exactly one weights name")
            for name in names:
                print(weights.fetch(name, opts.weights_dir, force=opts.force, url=opts.url))
        elif opts.command == "verify":
            for name in _expand(opts.names):
                print(json.dumps(weights.verify(name, opts.weights_dir)))
        elif opts.command == "path":
            print(weights.path(opts.name, opts.weights_dir))
    except (ConfigurationError, OSError) as exc:
        print(f"srprep-weights: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
