"""The SigV4 check the presigned-URL tests rely on accepts AWS's own published example and refuses
any change to what was signed."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.media.sigv4 import check_presigned_get

# AWS S3 API reference, "Authenticating Requests: Using Query Parameters (AWS Signature Version 4)":
# its example presigned GET of examplebucket/test.txt and the secret key it is signed with.
AWS_SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
AWS_EXAMPLE = (
    "https://examplebucket.s3.amazonaws.com/test.txt"
    "?X-Amz-Algorithm=AWS4-HMAC-SHA256"
    "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
    "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
    "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
)


def test_awss_published_example_is_accepted_with_what_it_was_signed_for() -> None:
    signed = check_presigned_get(AWS_EXAMPLE, AWS_SECRET)
    assert (signed.access_key_id, signed.region, signed.expires_s) == ("AKIAIOSFODNN7EXAMPLE", "us-east-1", 86400)
    assert signed.signed_at == dt.datetime(2013, 5, 24, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("X-Amz-Expires=86400", "X-Amz-Expires=604800"),  # a longer life
        ("/test.txt", "/other.txt"),  # another object
        ("examplebucket.s3", "otherbucket.s3"),  # another bucket (host)
        ("20130524T000000Z", "20130524T010000Z"),  # another signing time
        ("aeeed9bb", "aeeed9bc"),  # another signature
    ],
)
def test_a_changed_url_is_refused(old: str, new: str) -> None:
    with pytest.raises(ValueError, match="signature"):
        check_presigned_get(AWS_EXAMPLE.replace(old, new), AWS_SECRET)


def test_the_wrong_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="signature"):
        check_presigned_get(AWS_EXAMPLE, AWS_SECRET[:-1] + "Z")
