"""The ``crl-merge`` subcommands, one module per area; each has ``add_commands(subparsers)``."""
