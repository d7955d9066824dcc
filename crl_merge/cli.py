"""The ``crl-merge`` command line. ``make`` targets call it; ``crl-merge --help`` lists the commands."""

from __future__ import annotations

import argparse
import sys

from crl_merge.dt import cli as dt_commands
from crl_merge.merge import cli as merge_commands
from crl_merge.procgen import cli as procgen_commands
from crl_merge.procgen import env_cli as env_commands

COMMAND_MODULES = [env_commands, procgen_commands, merge_commands, dt_commands]


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """``--help`` shows every default, and descriptions keep their line breaks."""

    def _get_help_string(self, action):
        if action.required or action.default in (None, False, argparse.SUPPRESS) or "default" in (action.help or ""):
            return action.help
        return f"{action.help} (default: %(default)s)" if action.help else "(default: %(default)s)"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crl-merge", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_MODULES:
        module.add_commands(sub)
    for command in sub.choices.values():
        command.formatter_class = HelpFormatter
    return parser


def main(argv: list[str] | None = None) -> int:
    from crl_merge.checkpoint import CheckpointError
    from crl_merge.host_memory import keep_freed_memory
    from crl_merge.store import StoreError

    args = build_parser().parse_args(argv)
    keep_freed_memory()
    try:
        return args.func(args)
    except (ValueError, CheckpointError, StoreError) as e:  # ConfigError is a ValueError
        print(f"crl-merge: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # disk full, permissions: what the system said, about which file
        print(f"crl-merge: error: {e.filename or ''}{': ' if e.filename else ''}{e.strerror or e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
