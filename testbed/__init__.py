"""The ``testbed`` command line: provisioning, broker, supervisor, scenarios, reports."""
