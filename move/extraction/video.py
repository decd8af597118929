"""Stage 1, decoding: read videos with decord and sample frames uniformly over segments.

Reads video files (any container/codec ffmpeg knows); writes nothing. Also locates videos on disk
in the Kinetics layouts (``<split>/<label>/<id>.mp4``, ``<label>/<id>.mp4`` or flat folders).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from move.extraction.video_files import frame_files


class VideoDecodeError(Exception):
    """A video that cannot be opened or decoded; the message is the reason logged for it."""


def uniform_segment_indices(n_frames: int, n_segments: int) -> np.ndarray:
    """Index of the middle frame of each of ``n_segments`` equal segments of a video.

    Deterministic (TSN/TSM test-time sampling). A video with fewer frames than segments repeats
    frames in temporal order: each segment takes the frame under its midpoint, so neighbouring
    segments share a frame (e.g. 3 frames, 6 segments -> 0 0 1 1 2 2).
    """
    if n_frames <= 0:
        raise ValueError(f"a video needs at least one frame, got {n_frames}")
    if n_segments <= 0:
        raise ValueError(f"n_segments must be positive, got {n_segments}")
    midpoints = (np.arange(n_segments) + 0.5) * n_frames / n_segments
    return np.minimum(midpoints.astype(np.int64), n_frames - 1)


DECODE_CHUNK = 16
"""Distinct frames a decoder holds at full resolution at once (1080p RGB: 6.2 MB each).

``read_frames`` decodes and transforms this many frames at a time, so a decode worker's memory
is bounded by the chunk, not by T (150 full 1080p frames would be 0.9 GB as uint8, ~5 GB
once converted to float).
"""


DECODER_LOG_ENV = "MOVE_DECODER_LOG"  # 1: keep ffmpeg's and decord's own log lines (job logs)


def decoder_log_wanted() -> bool:
    """Whether the decoders' own log lines are kept (``MOVE_DECODER_LOG=1``); off by default: a
    failure's reason is logged in words, once, in the failures CSV."""
    return os.environ.get(DECODER_LOG_ENV, "").lower() in ("1", "true", "yes")


@contextmanager
def quiet_decoder():
    """Silence what ffmpeg and decord print to the process's stderr (file descriptor 2) while
    a video is opened or decoded, unless ``MOVE_DECODER_LOG`` asks to keep it."""
    if decoder_log_wanted():
        yield
        return
    import decord

    decord.logging.set_level(decord.logging.QUIET)
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def container_frames(path: str | Path) -> int | None:
    """The frame count a video's container states (its index, else duration × frame rate), read
    from the header with PyAV; None where it states none or cannot be read."""
    import av

    try:
        with quiet_decoder(), av.open(str(path)) as container:
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            if stream.duration and stream.time_base and stream.average_rate:
                return int(round(float(stream.duration * stream.time_base * stream.average_rate)))
    except Exception:  # the decoder's own open reports an unreadable file, in words
        return None
    return None


def open_video(path: str | Path, min_decoded_share: float = 0.0):
    """A decord reader of ``path`` (one decoder thread); missing, empty or unreadable -> error.

    ``min_decoded_share``: refuse a video whose decodable frames are fewer than this share of the
    frames its container states (a broken index decodes as a frame or two, which would be
    stored as copies of one frame)."""
    import decord

    path = Path(path)
    if not path.is_file():
        raise VideoDecodeError("file missing")
    if path.stat().st_size == 0:
        raise VideoDecodeError("empty file (0 bytes)")
    with decode_errors():
        reader = decord.VideoReader(str(path), num_threads=1)
        if len(reader) == 0:
            raise VideoDecodeError("no decodable frames")
    if min_decoded_share > 0:
        stated = container_frames(path)
        if stated and len(reader) < min_decoded_share * stated:
            raise VideoDecodeError(
                f"index broken: decoded {len(reader)} of the {stated} frames its container "
                f"states (fewer than extract.min_decoded_share = {min_decoded_share:g})"
            )
    return reader


# The decoder's own words for a failure, and what they mean.
DECODER_REASONS = (
    ("cannot find video stream", "no video stream (audio-only or unknown container)"),
    ("Error reading", "could not open: not a video file, or its header is broken"),
    ("ERROR opening", "could not open: not a video file, or its header is broken"),
    (
        "Invalid data found when processing input",
        "could not open: not a video file, or its header is broken",
    ),
    ("av_read_frame failed", "could not read frames: the file is truncated or corrupt"),
    ("Out of bound indices", "index broken: frames the container lists cannot be decoded"),
    ("Error sending packet", "could not decode frames: the video data is corrupt"),
    ("avcodec_send_packet", "could not decode frames: the video data is corrupt"),
    (
        "Resource temporarily unavailable",
        "could not decode frames: the stream ends early (truncated?)",
    ),
)
# decord's message prefix, repeated when it re-raises: "[10:31:02] /src/video_reader.cc:151: "
DECORD_PREFIX = re.compile(
    r"^(?:\s*(?:\[\d{2}:\d{2}:\d{2}\]\s*)?\S*\.(?:cc|cpp|h):\d+:\s*)+(?:Error:\s*)?"
)


@contextmanager
def decode_errors():
    """Turn decord's bare errors (DECORDError/RuntimeError) into a one-line VideoDecodeError
    saying what went wrong in words (the decoder's text only where no words are known), with
    the decoders' own log lines silenced (``quiet_decoder``)."""
    try:
        with quiet_decoder():
            yield
    except VideoDecodeError:
        raise
    except Exception as error:
        text = " ".join(str(error).split()) or type(error).__name__
        for found, reason in DECODER_REASONS:
            if found in text:
                raise VideoDecodeError(reason) from None
        raise VideoDecodeError(f"cannot decode ({decoder_text(text)[:160]})") from None


def decoder_text(text: str) -> str:
    """A decoder's message without decord's ``[hh:mm:ss] file.cc:N:`` prefixes (each of a
    re-raise): what is left in words."""
    text = DECORD_PREFIX.sub("", text.strip())
    return text.strip() or "the decoder gave no reason"


def decode_chunks(reader, indices: np.ndarray, size: int) -> Iterator[torch.Tensor]:
    """uint8 ``[k, H, W, 3]`` tensors of the frames at sorted distinct ``indices``, ``size`` at a time.

    decord's ``get_batch`` reads forward within a GOP and seeks only to a later keyframe, so
    sorted indices are decoded in one pass (measured no slower than skipping frame by frame,
    ``benchmarks/extract.py``); frames come zero-copy through DLPack.
    """
    from decord.bridge import to_torch

    for start in range(0, len(indices), size):
        with decode_errors():
            batch = reader.get_batch(indices[start : start + size].tolist())
        yield to_torch(batch)


def read_image_chunks(paths: list[Path], size: int) -> Iterator[torch.Tensor]:
    """uint8 ``[k, H, W, 3]`` tensors of the frames stored as images, ``size`` at a time.

    JPEGs are decoded as a batch by ``torchvision.io.decode_jpeg`` (libjpeg-turbo; measured
    0.89 ms a 340x256 frame against Pillow's 1.44 ms, one core), PNGs by ``decode_image``;
    torchvision 0.29 marks these deprecated in favour of TorchCodec, so the warning is silenced
    and Pillow takes over where they are gone. An unreadable frame, or frames of two sizes, are
    a ``VideoDecodeError`` naming the folder.
    """
    folder = paths[0].parent.name if paths else ""
    for start in range(0, len(paths), size):
        part = paths[start : start + size]
        try:
            images = _decode_images(part)
        except (RuntimeError, OSError, ValueError) as error:
            reason = " ".join(str(error).split())[:120]
            raise VideoDecodeError(f"could not read frame images in {folder} ({reason})") from None
        shapes = {tuple(image.shape) for image in images}
        if len(shapes) > 1:
            raise VideoDecodeError(f"frames of different sizes in {folder}: {sorted(shapes)}")
        yield torch.stack(images)


def _decode_images(paths: list[Path]) -> list[torch.Tensor]:
    """Each image as uint8 ``[H, W, 3]`` RGB (torchvision's decoders, else Pillow's): grey,
    palette and alpha images become RGB (alpha dropped), CMYK JPEGs RGB, 16-bit PNGs 8-bit
    (``to_uint8``, the nearest of the 256 levels: as lossless as 8-bit frames can be)."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            from torchvision.io import ImageReadMode, decode_image, decode_jpeg, read_file
        except ImportError:  # removed in a later torchvision
            return [_pillow_image(path) for path in paths]
        data = [read_file(str(path)) for path in paths]
        try:
            if all(path.suffix.lower() in (".jpg", ".jpeg") for path in paths):
                images = decode_jpeg(data, mode=ImageReadMode.RGB)
            else:
                images = [decode_image(item, mode=ImageReadMode.RGB) for item in data]
        except RuntimeError:  # a kind libjpeg/libpng is not asked to convert (e.g. CMYK)
            return [_pillow_image(path) for path in paths]
    return [to_uint8(image.permute(1, 2, 0)) for image in images]


def to_uint8(image: torch.Tensor) -> torch.Tensor:
    """An image of 8 or 16 bits a channel as uint8: 16-bit levels mapped to the nearest 8-bit
    one (``round(v / 257)``: 65535 -> 255)."""
    if image.dtype == torch.uint8:
        return image
    if image.dtype in (torch.uint16, torch.int32, torch.int64) or not image.is_floating_point():
        return ((image.to(torch.int64) + 128) // 257).clamp(0, 255).to(torch.uint8)
    raise VideoDecodeError(f"frame images of {image.dtype} are not 8- or 16-bit images")


def _pillow_image(path: Path) -> torch.Tensor:
    """One image as uint8 RGB through Pillow (16-bit grey ``I;16`` mapped as ``to_uint8``)."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode.startswith("I;16") or image.mode == "I":
            grey = to_uint8(torch.from_numpy(np.asarray(image).astype(np.int64)))
            return grey[..., None].expand(*grey.shape, 3).contiguous()
        return torch.from_numpy(np.asarray(image.convert("RGB")).copy())


def read_frames(
    path: str | Path,
    n_segments: int,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    min_decoded_share: float = 0.0,
) -> tuple[np.ndarray | torch.Tensor, int]:
    """Decode ``n_segments`` uniformly sampled RGB frames: (frames ``[T, ...]``, frame count).
    ``path`` is a video file or a frame folder (numbered images, read in numeric order): the same
    frame choice either way.

    Without ``transform`` the frames are a uint8 array ``[T, H, W, 3]``. With one (e.g. resize
    and crop), each chunk of ``DECODE_CHUNK`` distinct frames is transformed as soon as it is
    decoded and the result is a tensor of what it returns, so memory holds one full-resolution
    chunk, whatever T. Raises VideoDecodeError with a one-line reason for missing, empty,
    corrupt or stream-less files, and for those decoding far fewer frames than their container
    states (``min_decoded_share``).
    """
    if Path(path).is_dir():
        frames_on_disk = frame_files(path)
        if not frames_on_disk:
            raise VideoDecodeError("frame folder holds no numbered frames (img_00001.jpg ...)")
        n_frames = len(frames_on_disk)
        indices = uniform_segment_indices(n_frames, n_segments)
        distinct, positions = np.unique(indices, return_inverse=True)
        chunks_read = read_image_chunks([frames_on_disk[i] for i in distinct], DECODE_CHUNK)
    else:
        reader = open_video(path, min_decoded_share)
        n_frames = len(reader)
        indices = uniform_segment_indices(n_frames, n_segments)
        distinct, positions = np.unique(indices, return_inverse=True)
        chunks_read = decode_chunks(reader, distinct, DECODE_CHUNK)
    chunks = [chunk if transform is None else transform(chunk) for chunk in chunks_read]
    frames = torch.cat(chunks)
    if frames.shape[0] != len(distinct) or (transform is None and frames.ndim != 4):
        raise VideoDecodeError(f"decoded frames have unexpected shape {tuple(frames.shape)}")
    if len(distinct) < n_segments:  # a short video repeats frames
        frames = frames[torch.from_numpy(positions)]
    return (frames.numpy() if transform is None else frames), n_frames
