"""Processing decodes an upload's original once per job: every variant, however many the upload
asks for and in whatever format, is rendered from that one decoded image (sharp's users clone one
pipeline per variant; a naive pipeline opens the file again for each). Counted at the pipeline's
decoder seam (``process_image(decoder=...)``, ``MediaProcessor.decoder``), the one way from an
original's bytes to its pixels."""

from __future__ import annotations

from PIL import Image
from switchboard.media.v1 import media_pb2

from services.media.convert import variant_spec
from services.media.domain.pipeline import open_original, process_image
from services.media.domain.sniff import ImageKind
from services.media.queues import processing_queue
from services.media.settings import MediaSettings
from tests.media.images import encoded, gradient, shared
from tests.media.support import MediaClient, running_worker


class CountingDecoder:
    """The pipeline's own decoder, counting its calls."""

    def __init__(self) -> None:
        self.opened: list[ImageKind] = []

    def __call__(self, data: bytes, kind: ImageKind) -> Image.Image:
        self.opened.append(kind)
        return open_original(data, kind)


WEBP, JPEG, PNG = media_pb2.IMAGE_FORMAT_WEBP, media_pb2.IMAGE_FORMAT_JPEG, media_pb2.IMAGE_FORMAT_PNG
FIT, COVER = media_pb2.VARIANT_FIT_FIT, media_pb2.VARIANT_FIT_COVER
ASKED = [
    media_pb2.VariantSpec(name="thumb", max_width=150, max_height=150, fit=COVER, format=WEBP),
    media_pb2.VariantSpec(name="small", max_width=320, max_height=320, fit=FIT, format=JPEG, quality=80),
    media_pb2.VariantSpec(name="medium", max_width=800, max_height=800, fit=FIT, format=WEBP),
    media_pb2.VariantSpec(name="square", max_width=600, max_height=600, fit=COVER, format=PNG),
    media_pb2.VariantSpec(name="large", max_width=1600, max_height=1600, fit=FIT, format=WEBP),
]
"""Five variants in three formats, as an upload names them."""
SPECS = tuple(variant_spec(spec) for spec in ASKED)


def originals() -> dict[str, bytes]:
    return {
        "jpeg photo (DCT-scaled decode)": shared("sk_rocket.jpg"),
        "png with alpha": encoded(gradient((900, 700), "RGBA"), "PNG"),
        "webp": encoded(gradient((900, 700)), "WEBP"),
        "gif": encoded(gradient((900, 700)).convert("P"), "GIF"),
    }


def test_each_format_is_opened_once_for_five_variants_in_three_formats() -> None:
    for what, data in originals().items():
        decoder = CountingDecoder()
        result = process_image(data, SPECS, max_pixels=50_000_000, decoder=decoder)
        assert [v.name for v in result.variants] == [s.name for s in SPECS], what
        assert len(decoder.opened) == 1, what


async def test_a_processing_job_opens_the_original_once_for_every_variant_it_asked_for(
    media: MediaClient, media_settings: MediaSettings
) -> None:
    decoder = CountingDecoder()
    async with running_worker(media_settings, processing_queue(media_settings), decoder=decoder):
        answer = await media.upload(shared("sk_rocket.jpg"), owner_id="once", variants=ASKED)
        ready = await media.wait_state(answer.media.media_id, media_pb2.MEDIA_STATE_READY)
        defaults = await media.upload(encoded(gradient((900, 700)), "PNG"), owner_id="defaults")
        await media.wait_state(defaults.media.media_id, media_pb2.MEDIA_STATE_READY)
    assert [v.name for v in ready.variants] == [s.name for s in SPECS]
    assert decoder.opened == [ImageKind.JPEG, ImageKind.PNG]  # one per job, not one per variant
