"""One module per ``mcastkit`` sub-command group, each with ``register(subparsers)``."""
