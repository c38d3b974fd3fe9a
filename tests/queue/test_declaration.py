"""How a service declares a queue (QueueSpec, RateLimit, Retention), its Redis keys, and the JSON codec."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from arq.worker import func

from runtime.errors import InvalidArgument, PayloadTooLarge
from runtime.queue import codec
from runtime.queue.keys import JOB_ID_PATTERN, PREFIX, QUEUE_NAME_PATTERN, QueueKeys
from runtime.queue.schedule import Schedule
from runtime.queue.spec import JobFunction, QueueSpec, RateLimit, Retention
from runtime.retry import RetryPolicy


async def resize(ctx: dict[str, Any], *, image_id: str, width: int = 640) -> str:
    return f"{image_id}@{width}"


async def send_sms(ctx: dict[str, Any], to: str) -> None:
    return None


def media_queue(**fields: Any) -> QueueSpec:
    return QueueSpec("media", [resize, func(send_sms, name="sms", max_tries=7, timeout=12.5)], **fields)


# --- RateLimit ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "limit"),
    [
        ("30/1s", RateLimit(30, 1.0)),
        ("10/500ms", RateLimit(10, 0.5)),
        ("5", RateLimit(5, 1.0)),
        (" 7/s ", RateLimit(7, 1.0)),
        ("3/2", RateLimit(3, 2.0)),
        ("120/60s", RateLimit(120, 60.0)),
    ],
)
def test_a_rate_limit_is_read_from_its_setting(text: str, limit: RateLimit) -> None:
    assert RateLimit.parse(text) == limit


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_rate_limit_setting_means_no_limit(text: str) -> None:
    assert RateLimit.parse(text) is None


@pytest.mark.parametrize("text", ["30/1m", "30/1h", "30/1min", "30/1x", "30/1X"])
def test_a_rate_limit_window_in_any_other_unit_is_refused_not_misread(text: str) -> None:
    with pytest.raises(ValueError, match=f"^could not convert string to float: '{text[3:]}'$"):
        RateLimit.parse(text)


def test_the_rate_limit_window_in_milliseconds() -> None:
    assert (RateLimit(10, 0.5).period_ms, RateLimit(10, 60.0).period_ms) == (500, 60_000)


def test_a_sub_millisecond_window_counts_as_one_millisecond() -> None:
    assert RateLimit(10, 0.0004).period_ms == 1


@pytest.mark.parametrize(("max_jobs", "period_s"), [(0, 1.0), (1, 0.0), (5, -1.0)])
def test_a_rate_limit_needs_a_job_and_a_positive_window(max_jobs: int, period_s: float) -> None:
    with pytest.raises(ValueError, match=r"^rate limit needs max_jobs >= 1 and period_s > 0$"):
        RateLimit(max_jobs, period_s)


def test_one_job_per_window_is_a_valid_rate_limit() -> None:
    assert RateLimit(1, 0.001).max_jobs == 1


def test_a_rate_limit_defaults_to_a_one_second_window() -> None:
    assert RateLimit(3).period_s == 1.0


# --- Retention and QueueSpec defaults -----------------------------------------------------------


def test_finished_jobs_are_kept_by_default_100_completed_1000_failed_for_a_week() -> None:
    assert Retention() == Retention(completed=100, failed=1000, max_age_s=604_800.0)


def test_a_queue_declaration_defaults() -> None:
    spec = media_queue()
    assert (
        spec.concurrency,
        spec.attempts,
        spec.backoff,
        spec.job_timeout_s,
        spec.retention,
        spec.rate_limit,
        spec.key_rate_limit,
        spec.lease_s,
        spec.max_payload_bytes,
        spec.shutdown_grace_s,
    ) == (50, 3, RetryPolicy(attempts=3, base=1.0, cap=60.0), 300.0, Retention(), None, None, 5.0, 524_288, 10.0)


# --- QueueSpec validation -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["media", "notify-high", "q_1", "x" * 64])
def test_a_queue_name_of_letters_digits_dash_and_underscore_is_accepted(name: str) -> None:
    assert QueueSpec(name, [resize]).name == name


@pytest.mark.parametrize("name", ["", "x" * 65, "a b", "media:1", "{media}", "média"])
def test_a_queue_name_that_could_break_its_keys_is_refused(name: str) -> None:
    with pytest.raises(ValueError, match=r"^queue name .* must match"):
        QueueSpec(name, [resize])


@pytest.mark.parametrize("field", ["concurrency", "attempts", "lease_s"])
def test_concurrency_attempts_and_lease_must_be_positive(field: str) -> None:
    with pytest.raises(ValueError, match=r"^concurrency, attempts and lease_s must be positive$"):
        QueueSpec("media", [resize], **{field: 0})  # type: ignore[arg-type]


def test_one_worker_slot_one_attempt_and_a_short_lease_are_valid() -> None:
    spec = QueueSpec("media", [resize], concurrency=1, attempts=1, lease_s=0.1)
    assert (spec.concurrency, spec.attempts, spec.lease_s) == (1, 1, 0.1)


def test_a_queue_takes_schedules_of_its_own_jobs_with_data_they_take() -> None:
    thumbnails = Schedule("thumbnails", "0 3 * * *", "resize", {"image_id": "img-7f3a"})
    digest = Schedule("sms-digest", "0 9 * * 1", "sms", {"to": "+4915112345678"})
    assert media_queue(schedules=[thumbnails, digest]).schedules == [thumbnails, digest]


@pytest.mark.parametrize(
    ("schedule", "problem"),
    [
        (
            Schedule("thumbnails", "0 3 * * *", "thumbnail"),
            "schedule 'thumbnails': name: unknown job type 'thumbnail' for queue 'media'",
        ),
        (
            Schedule("thumbnails", "0 3 * * *", "resize", {"image_id": "img-7f3a", "height": 240}),
            "schedule 'thumbnails': data.height: is not a parameter of this job (job 'resize')",
        ),
        (
            Schedule("thumbnails", "0 3 * * *", "resize", {"width": 320}),
            "schedule 'thumbnails': data.image_id: is required (job 'resize')",
        ),
    ],
)
def test_a_queue_refuses_a_schedule_of_a_job_it_does_not_have_or_with_data_it_does_not_take(
    schedule: Schedule, problem: str
) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(problem)}$"):
        media_queue(schedules=[schedule])


def test_two_schedules_of_one_queue_may_not_share_a_name() -> None:
    twice = [
        Schedule("thumbnails", "0 3 * * *", "resize", {"image_id": "img-7f3a"}),
        Schedule("thumbnails", "30 3 * * *", "resize", {"image_id": "img-9c1d"}),
    ]
    with pytest.raises(
        ValueError, match=re.escape("queue 'media': schedule names must be unique (['thumbnails', 'thumbnails'])")
    ):
        media_queue(schedules=twice)


# --- job functions ------------------------------------------------------------------------------


def test_job_types_are_named_by_their_function_or_their_wrapper() -> None:
    assert sorted(media_queue().function_map) == ["resize", "sms"]
    assert media_queue().function("resize").coroutine is resize


def test_a_job_function_built_inside_a_factory_is_named_by_its_own_name() -> None:
    def media_jobs(bucket: str) -> JobFunction:
        async def thumbnail(ctx: dict[str, Any], *, image_id: str) -> str:
            return f"{bucket}/{image_id}"

        return thumbnail

    # Not by its qualified name, "...media_jobs.<locals>.thumbnail": that is no job type a client sends.
    assert sorted(QueueSpec("media", [media_jobs("switchboard-media")]).function_map) == ["thumbnail"]


def test_a_job_type_named_with_a_nul_character_is_refused() -> None:
    # A claim's reply joins a job's fields with NUL: a name holding one would split wrongly.
    with pytest.raises(ValueError, match="job type 'sms\\\\x00v2': a name may not hold a NUL character"):
        QueueSpec("media", [func(send_sms, name="sms\x00v2")])


def test_an_unknown_job_type_is_an_invalid_name() -> None:
    with pytest.raises(InvalidArgument) as caught:
        media_queue().function("thumbnail")
    assert (caught.value.field, caught.value.problem) == ("name", "unknown job type 'thumbnail' for queue 'media'")


def test_data_that_fits_the_job_functions_keywords_is_accepted() -> None:
    media_queue().check_data("resize", {"image_id": "img-7f3a", "width": 320})
    media_queue().check_data("resize", {"image_id": "img-7f3a"})


@pytest.mark.parametrize(
    ("data", "field", "problem"),
    [
        ({}, "data.image_id", "is required"),
        ({"image_id": "a", "height": 3}, "data.height", "is not a parameter of this job"),
        ({"image_id": "a", "width": "320"}, "data.width", "'320' is not of type 'integer'"),
    ],
)
def test_data_that_does_not_fit_the_job_function_names_the_key(data: dict[str, Any], field: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        media_queue().check_data("resize", data)
    assert (caught.value.field, caught.value.problem) == (field, f"{problem} (job 'resize')")


def test_a_wrapper_overrides_attempts_and_timeout_for_its_job() -> None:
    spec = media_queue(attempts=4, job_timeout_s=30.0)
    assert (spec.max_attempts_for("sms"), spec.timeout_for("sms")) == (7, 12.5)


def test_a_plain_function_takes_the_queues_attempts_and_timeout() -> None:
    spec = media_queue(attempts=4, job_timeout_s=30.0)
    assert (spec.max_attempts_for("resize"), spec.timeout_for("resize")) == (4, 30.0)


def test_a_queues_keys_are_its_own() -> None:
    assert media_queue().keys == QueueKeys("media")


# --- keys ---------------------------------------------------------------------------------------


def test_every_key_of_a_queue_shares_one_hash_tag_under_the_versioned_prefix() -> None:
    keys = QueueKeys("media")
    assert PREFIX == "sbq:v3"
    assert keys.prefix == "sbq:v3:{media}:"
    assert [keys.wait, keys.delayed, keys.active, keys.lease, keys.completed, keys.failed] == [
        "sbq:v3:{media}:wait",
        "sbq:v3:{media}:delayed",
        "sbq:v3:{media}:active",
        "sbq:v3:{media}:lease",
        "sbq:v3:{media}:completed",
        "sbq:v3:{media}:failed",
    ]
    assert [keys.paused, keys.notify, keys.workers, keys.events] == [
        "sbq:v3:{media}:paused",
        "sbq:v3:{media}:notify",
        "sbq:v3:{media}:workers",
        "sbq:v3:{media}:events",
    ]
    assert keys.job("01J8Z3K4M5") == "sbq:v3:{media}:j:01J8Z3K4M5"


@pytest.mark.parametrize(
    ("state", "suffix"),
    [
        ("waiting", "wait"),
        ("delayed", "delayed"),
        ("active", "active"),
        ("completed", "completed"),
        ("failed", "failed"),
    ],
)
def test_each_job_state_has_its_sorted_set(state: str, suffix: str) -> None:
    assert QueueKeys("media").state_set(state) == f"sbq:v3:{{media}}:{suffix}"


def test_ids_and_names_are_limited_to_characters_safe_in_a_key() -> None:
    assert JOB_ID_PATTERN.fullmatch("order-2024.11:7_a")
    assert not JOB_ID_PATTERN.fullmatch("a" * 129)
    assert not JOB_ID_PATTERN.fullmatch("a b")
    assert not JOB_ID_PATTERN.fullmatch("order-7\n")
    assert not QUEUE_NAME_PATTERN.fullmatch("a:b")
    assert not QUEUE_NAME_PATTERN.fullmatch("workflow\n")


# --- codec --------------------------------------------------------------------------------------


def test_json_is_compact_and_keeps_unicode() -> None:
    assert codec.dumps({"to": "Ольга", "n": [1, 2]}) == '{"to":"Ольга","n":[1,2]}'


def test_a_field_is_encoded_as_compact_json() -> None:
    assert codec.encode_field("data", {"image_id": "img-7f3a", "width": 320}) == '{"image_id":"img-7f3a","width":320}'


@pytest.mark.parametrize("value", [{"blob": b"\x89PNG"}, {"x": float("nan")}, {"x": float("inf")}])
def test_a_field_json_cannot_hold_is_invalid_naming_the_field(value: Any) -> None:
    with pytest.raises(InvalidArgument) as caught:
        codec.encode_field("data", value)
    assert caught.value.field == "data"
    assert caught.value.problem.startswith("not JSON-serialisable: ")


def test_a_field_over_its_byte_limit_is_too_large_with_its_size() -> None:
    value = {"caption": "é" * 300}  # 600 bytes of UTF-8 in 300 characters
    text = codec.dumps(value)
    size = len(text.encode())
    with pytest.raises(PayloadTooLarge) as caught:
        codec.encode_field("data", value, limit=size - 1)
    assert caught.value.message == f"data: payload is {size} bytes, over the {size - 1}-byte limit"
    assert caught.value.details == {"field": "data", "size": size, "limit": size - 1}


def test_the_byte_limit_counts_bytes_not_characters() -> None:
    value = {"caption": "é" * 300}
    with pytest.raises(PayloadTooLarge):
        codec.encode_field("data", value, limit=400)


def test_a_field_exactly_at_its_byte_limit_is_accepted() -> None:
    text = codec.encode_field("data", {"id": "a"})
    assert codec.encode_field("data", {"id": "a"}, limit=len(text)) == text


def test_a_result_is_encoded_as_json() -> None:
    assert codec.encode_result({"width": 320, "name": "Ольга"}) == '{"width":320,"name":"Ольга"}'


def test_a_result_json_cannot_hold_is_kept_as_its_repr() -> None:
    assert codec.encode_result({1, 2}) == json.dumps(repr({1, 2}))
    assert codec.encode_result(float("nan")) == '"nan"'
