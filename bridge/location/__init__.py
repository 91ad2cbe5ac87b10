"""Where an event happened: coordinate systems, the grid layer and per-object location from a homography."""
