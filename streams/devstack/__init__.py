"""The local stack (Kafka or Tansu, Redis) that the demo and the test fixtures start.

Nothing here is used by the workers in production; it exists so that a fresh machine
can run the demo and the integration tests with real services and no Docker.
"""
