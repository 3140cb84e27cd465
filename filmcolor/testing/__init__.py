"""Test suites shipped with the package, for code outside it (fsspec's ``tests/abstract`` idea).

:class:`~filmcolor.testing.engines.EngineConformance`: the suite every built-in engine passes; a
third-party engine subclasses it and overrides one fixture, ``engine_name``. Needs pytest.
"""
