"""Live video for the console: a restreaming child process fed the cameras' RTSP URLs, proxied
through the service's authenticated API so that credentials never reach a browser."""
