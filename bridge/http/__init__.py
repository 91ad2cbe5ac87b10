"""The HTTP API and the operations console: routes, auth, readiness, live video."""
