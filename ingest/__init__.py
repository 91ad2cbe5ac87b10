"""Sources: video frames from PyAV (RTSP, files, replay) and the workers that keep them alive.

`ingest` imports nothing from `detectors`, `bridge` or `xueliang`.
"""
