"""The ``crl-merge`` command line. ``make`` targets call it; ``crl-merge --help`` lists the commands."""

from __future__ import annotations

import argparse
import sys

from crl_merge.dt import cli as dt_commands
from crl_merge.merge import cli as merge_commands
from crl_merge.procgen import cli as procgen_commands
from crl_merge.procgen import env_cli as env_commands

COMMAND_MODULES = [env_commands, procgen_commands, merge_commands, dt_commands]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crl-merge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from crl_merge.checkpoint import CheckpointError
    from crl_merge.store import StoreError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, CheckpointError, StoreError) as e:  # ConfigError is a ValueError
        print(f"crl-merge: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
