"""Sub-commands of the CLI, one module per concern; each exposes ``register``."""
