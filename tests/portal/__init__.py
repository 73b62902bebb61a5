"""Portal tests (issue 11); a package so that its conftest has its own module name."""
