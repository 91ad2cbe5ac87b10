"""Events: an incident change becomes the versioned Event the platform receives, with category, location, evidence and readings."""
