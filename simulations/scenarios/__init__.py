"""One module per scenario; each registers itself with ``@simulations.registry.scenario``."""
