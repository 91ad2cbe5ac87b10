from ingest.redact import redact_text, redact_url


def test_password_is_masked_user_kept():
    assert redact_url("rtsp://admin:s3cr3t@10.0.0.5:554/Streaming/101") == "rtsp://admin:***@10.0.0.5:554/Streaming/101"


def test_query_token_is_masked():
    assert redact_url("rtsp://cam.local/live?token=abc&channel=1") == "rtsp://cam.local/live?token=***&channel=1"


def test_plain_urls_and_paths_unchanged():
    assert redact_url("rtsp://cam.local:8554/live") == "rtsp://cam.local:8554/live"
    assert redact_url("/videos/a.mp4") == "/videos/a.mp4"


def test_free_text_is_redacted():
    msg = "cannot open rtsp://u:p%40ss@127.0.0.1:8554/x: Connection refused"
    assert "p%40ss" not in redact_text(msg) and "u:***@127.0.0.1" in redact_text(msg)
