"""Real services for tests: Redis, PostgreSQL and Switchboard processes on free loopback ports."""
