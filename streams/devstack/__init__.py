"""The local stack (Apache Kafka, one node or three; Redis; worker and API processes) that
the demo, the test fixtures and the benchmarks start.

Nothing here is used by the workers or the API in production (tests/unit/
test_production_imports.py checks it); it exists so that a fresh machine can run the demo
and the integration tests with real services and no Docker.
"""
