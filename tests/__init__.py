"""The test suite, as a package: the modules that share helpers import them as ``tests.*`` under a bare ``pytest``."""
