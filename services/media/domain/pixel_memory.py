"""A Pillow image's pixels as numpy arrays over the image's own memory, and new images written
from arrays: how :mod:`.vips_reduce` reads a decoded source and writes its result without copying
the pixels out of Pillow and back (``np.asarray`` and ``Image.fromarray`` would copy them, the
former briefly twice over).

Pillow keeps L in one byte a pixel and LA, RGB and RGBA in four (LA as L, -, -, A; RGB padded):
the arrays here are (rows, columns, bytes a pixel) over that layout, through Pillow's Arrow
export, where the image's rows are one block of memory
(:func:`services.media.memory.allocate_images_in_one_block`).
"""

from __future__ import annotations

import ctypes

import numpy as np
from PIL import Image

__all__ = ["STORED_BANDS", "Planes", "fill_unused_bytes", "image_of", "image_planes", "shared_pixels"]

Planes = list[np.ndarray]


def image_of(pixels: np.ndarray, mode: str) -> Image.Image:
    """A new ``mode`` image of ``pixels`` (uint8, columns × rows × Pillow's bytes a pixel: the
    bands where Pillow stores them), written once into the image's own memory, a tile of columns
    at a time, so that the tile's lines stay in the cache while every row takes its part of them."""
    width, height = pixels.shape[:2]
    fill_unused_bytes(pixels, mode)
    image = Image.new(mode, (width, height), None)  # every byte is written below: no fill
    view = shared_pixels(image)
    if view is None:  # rows not in one block (not for a variant's size: Pillow's blocks are 16 MB)
        bands = pixels.transpose(1, 0, 2)[:, :, STORED_BANDS[mode]]
        return Image.fromarray(np.ascontiguousarray(bands[:, :, 0] if mode == "L" else bands), mode)
    source, target = (pixels[:, :, 0], view[:, :, 0]) if mode == "L" else (_words(pixels), _words(view))
    for start in range(0, width, _TILE):
        target[:, start : start + _TILE] = source[start : start + _TILE].T
    return image


def fill_unused_bytes(pixels: np.ndarray, mode: str) -> None:
    """The bytes of ``pixels`` (…, 4 bytes a pixel) a ``mode`` image does not use, set as Pillow
    sets them: RGB's padding byte 255, as its decoders and fills leave it; LA's L in the first three."""
    if mode == "RGB":
        pixels[..., 3] = 255
    elif mode == "LA":
        pixels[..., 1:3] = pixels[..., :1]


_TILE = 64
"""Columns written at a time by :func:`image_of` (a 1600-row variant's: 400 KB)."""


def _words(pixels: np.ndarray) -> np.ndarray:
    """``pixels`` (…, 4 bytes) as one uint32 a pixel: the transposed copy moves whole pixels."""
    return pixels.view(np.uint32)[..., 0]


def image_planes(image: Image.Image) -> Planes:
    """The bands of an L, LA, RGB or RGBA ``image`` as uint8 arrays (rows × columns), views of the
    image's own memory where it is one block (:func:`services.media.memory.allocate_images_in_one_block`),
    else copies. ``np.asarray(image)`` would copy the pixels out (``tobytes``), briefly twice over:
    for a 16-megapixel photo 100 MB and 70 ms of CPU, more than the image itself."""
    view = shared_pixels(image)
    if view is not None:
        return [view[:, :, band] for band in STORED_BANDS[image.mode]]
    pixels = np.asarray(image)
    return [pixels] if pixels.ndim == 2 else [pixels[:, :, band] for band in range(pixels.shape[2])]


# Pillow keeps L in one byte a pixel, LA, RGB and RGBA in four (LA as L, -, -, A; RGB padded).
STORED_BANDS = {"L": (0,), "LA": (0, 3), "RGB": (0, 1, 2), "RGBA": (0, 1, 2, 3)}


class _ArrowArray(ctypes.Structure):
    """The Arrow C data interface's ``struct ArrowArray`` (a stable ABI), as Pillow exports an image."""


_ArrowArray._fields_ = [
    ("length", ctypes.c_int64),
    ("null_count", ctypes.c_int64),
    ("offset", ctypes.c_int64),
    ("n_buffers", ctypes.c_int64),
    ("n_children", ctypes.c_int64),
    ("buffers", ctypes.POINTER(ctypes.c_void_p)),
    ("children", ctypes.POINTER(ctypes.POINTER(_ArrowArray))),
    ("dictionary", ctypes.POINTER(_ArrowArray)),
    ("release", ctypes.c_void_p),
    ("private_data", ctypes.c_void_p),
]
_capsule_pointer = ctypes.pythonapi.PyCapsule_GetPointer
_capsule_pointer.restype = ctypes.c_void_p
_capsule_pointer.argtypes = [ctypes.py_object, ctypes.c_char_p]


def shared_pixels(image: Image.Image) -> np.ndarray | None:
    """``image``'s storage as a (rows, columns, bytes a pixel) array over the same memory, through
    Pillow's Arrow export (zero-copy); ``None`` where the rows are not one block. The array keeps
    the image and the export alive as long as it lives."""
    export = getattr(image, "__arrow_c_array__", None)  # Pillow 11.2 and later
    if export is None or image.mode not in STORED_BANDS:
        return None
    try:
        schema, exported = export()
    except ValueError:  # "Image rows are not contiguous in memory": allocated in 16 MB blocks
        return None
    array = _ArrowArray.from_address(_capsule_pointer(exported, b"arrow_array"))
    pixel_bytes = 1 if image.mode == "L" else 4
    leaf = array if pixel_bytes == 1 else array.children[0].contents  # a fixed-size list of 4 bytes
    if leaf.buffers[1] is None or array.length != image.width * image.height:
        return None
    memory = (ctypes.c_uint8 * (array.length * pixel_bytes)).from_address(leaf.buffers[1] + leaf.offset)
    memory._owners = (schema, exported, image)
    return np.frombuffer(memory, np.uint8).reshape(image.height, image.width, pixel_bytes)
