"""Sub-commands of ``testbed``, one module per command group."""
