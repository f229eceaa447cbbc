"""The hostile suite runs on the integration tests' real services (Kafka, Redis)."""

from tests.integration.conftest import kafka_bootstrap, redis_server, redis_url

__all__ = ["kafka_bootstrap", "redis_server", "redis_url"]
