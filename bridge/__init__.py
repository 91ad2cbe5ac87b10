"""Everything after an incident: event model, grid resolution, durable outbox, Kafka, HTTP API."""
