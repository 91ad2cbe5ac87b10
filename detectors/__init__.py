"""Models, tracking, and the pure rules that turn detections into incident changes.

`detectors` may import `ingest`'s types; never `bridge` or `xueliang`.
"""
