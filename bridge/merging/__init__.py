"""One incident, one record: sightings of one problem by several sources merged, locally and over Kafka."""
