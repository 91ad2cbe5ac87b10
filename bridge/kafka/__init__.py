"""Kafka: draining the outbox into the dispatch topic, topics, the shared group-consumer loop, and the cluster on it (settings, camera registry and ownership, sensor partitions)."""
