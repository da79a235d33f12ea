"""Handlers of the `mysimbdp` sub-commands, one module per part of the platform."""
