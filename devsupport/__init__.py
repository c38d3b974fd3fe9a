"""Local infrastructure shared by `make run` (scripts/), the benchmarks (bench/) and the tests.

Starting a real redis-server or PostgreSQL cluster on a loopback port (:mod:`.redis_server`,
:mod:`.postgres_server`), choosing free ports (:mod:`.ports`), running and watching Switchboard
processes as an operator starts them (:mod:`.procs`), the one bounded polling helper
(:mod:`.waiting`), builders for status messages (:mod:`.status_batches`) and the ingest lease
a batch needs (:mod:`.status_leases`). Services and the gateway never import it; it imports
nothing from tests/.
"""
