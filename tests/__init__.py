"""musicid's tests: a package, so that `tests.conftest` is ours even where another distribution
installs a top-level `tests`."""
