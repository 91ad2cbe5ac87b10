"""What the service keeps on disk: the outbox and event log, dead letters, audit, availability, retention, the disk guard and their upkeep."""
