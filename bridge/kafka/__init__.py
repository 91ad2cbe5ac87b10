"""Kafka: draining the outbox into the dispatch topic, topics, and the shared group-consumer loop."""
