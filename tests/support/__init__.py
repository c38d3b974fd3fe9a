"""Test-only support that `make run` and the benchmarks do not need (a headless browser).

Redis, PostgreSQL, free ports, processes and waiting live in :mod:`devsupport`, shared with
scripts/ and bench/.
"""
