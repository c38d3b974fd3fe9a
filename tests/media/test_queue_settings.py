"""The media queues as the service and its workers declare them from their settings: by default
the numbers issue 9 names (media-processing: concurrency 5, 3 attempts backing off exponentially
from 1 s; watermark: concurrency 3; media-sync: concurrency 5), and the limits it names read from
the environment variables it names (MEDIA_MAX_UPLOAD_BYTES 25 MiB, MEDIA_MAX_PIXELS 50 MP,
MEDIA_RETENTION_DAYS 30, S3_BUCKET and its endpoint and credentials)."""

from __future__ import annotations

import pytest

from services.media.queues import PROCESSING_QUEUE, SPECS, SYNC_QUEUE, WATERMARK_QUEUE
from services.media.settings import MediaSettings

VARIABLES = (
    "MEDIA_MAX_UPLOAD_BYTES",
    "MEDIA_MAX_PIXELS",
    "MEDIA_RETENTION_DAYS",
    "MEDIA_PROCESSING_CONCURRENCY",
    "MEDIA_PROCESSING_ATTEMPTS",
    "MEDIA_PROCESSING_BACKOFF_BASE_S",
    "MEDIA_SYNC_CONCURRENCY",
    "MEDIA_WATERMARK_CONCURRENCY",
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_REGION",
)


@pytest.fixture
def unset(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("unset")
def test_by_default_the_queues_run_at_the_issues_numbers() -> None:
    specs = {name: spec(MediaSettings()) for name, spec in SPECS.items()}
    processing, sync, watermark = specs[PROCESSING_QUEUE], specs[SYNC_QUEUE], specs[WATERMARK_QUEUE]
    assert (processing.concurrency, processing.attempts) == (5, 3)
    assert (watermark.concurrency, sync.concurrency) == (3, 5)
    backoff = processing.backoff
    assert backoff is not None
    # Exponential from 1 s: the raw delays before retries 1 and 2 are 1 s and 2 s, less up to 20 % jitter.
    assert (backoff.base, backoff.multiplier, backoff.jitter) == (1.0, 2.0, 0.2)
    assert 0.8 <= backoff.delay_for(1) <= 1.0 < 1.6 <= backoff.delay_for(2) <= 2.0


@pytest.mark.usefixtures("unset")
def test_by_default_uploads_are_limited_as_the_issue_says_and_everything_stays_local() -> None:
    settings = MediaSettings()
    assert settings.media_max_upload_bytes == 25 * 1024 * 1024
    assert settings.media_max_pixels == 50_000_000
    assert settings.media_retention_days == 30
    assert settings.s3_bucket == ""


@pytest.mark.usefixtures("unset")
def test_the_limits_the_queues_and_s3_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    values = {
        "MEDIA_MAX_UPLOAD_BYTES": "1000",
        "MEDIA_MAX_PIXELS": "2000",
        "MEDIA_RETENTION_DAYS": "7",
        "MEDIA_PROCESSING_CONCURRENCY": "2",
        "MEDIA_PROCESSING_ATTEMPTS": "4",
        "MEDIA_PROCESSING_BACKOFF_BASE_S": "0.5",
        "MEDIA_WATERMARK_CONCURRENCY": "1",
        "S3_BUCKET": "media-bucket",
        "S3_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "key-id",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "AWS_REGION": "eu-west-1",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    settings = MediaSettings()
    read = (settings.media_max_upload_bytes, settings.media_max_pixels, settings.media_retention_days)
    assert read == (1000, 2000, 7)
    s3 = (settings.s3_bucket, settings.s3_endpoint_url, settings.aws_access_key_id, settings.aws_secret_access_key)
    assert (*s3, settings.aws_region) == ("media-bucket", "http://127.0.0.1:9", "key-id", "secret", "eu-west-1")
    processing = SPECS[PROCESSING_QUEUE](settings)
    assert (processing.concurrency, processing.attempts) == (2, 4)
    assert processing.backoff is not None
    assert processing.backoff.base == 0.5
    assert SPECS[WATERMARK_QUEUE](settings).concurrency == 1
