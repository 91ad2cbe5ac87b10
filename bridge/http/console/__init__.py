"""The operations console's API: map layer, event detail, and the camera operator's tuning bench."""
