"""Read videos (and animated GIF/WebP) safely: what they are, and their frames sampled once a second.

Videos are decoded with PyAV, whose wheels ship FFmpeg, so no system FFmpeg is needed. Animated GIF and WebP
count as video (ComfyUI's video nodes save their outputs that way) and are read with Pillow, which decodes
animated WebP where FFmpeg does not.

**Untrusted input.** Every cap is in ``config.Limits`` and every failure is an :class:`ItemError`, so a hostile
file becomes an error record and the batch goes on:

* more streams than ``max_video_streams`` (a parser attack), no video stream, a declared duration above
  ``max_video_seconds``, frames above ``max_video_frame_pixels`` (checked on the stream header and again on
  every decoded frame, since dimensions may change mid-stream) -> ``too_large`` / ``unsupported_media``
  before anything is decoded;
* more than ``max_video_frames`` frames decoded, or more than twice as many packets read (a stream that
  never yields a frame: an endless GOP of undecodable packets) -> ``too_large``;
* more than ``max_video_decode_s`` seconds of decoding -> ``timeout`` (below the worker's own per-item
  timeout, so the item gets a clear record instead of a killed worker);
* a truncated or corrupt file (FFmpeg's errors) -> ``decode_error``.

**Sampling** follows Meta's reference vPDQ (``vpdq/cpp/hashing/filehasher.cpp``) so that hashes agree with
hashes other systems computed: frames are numbered in decoding output order, the frame rate is the stream's
average rate (else its base rate), every ``int(seconds_per_sample * fps)``-th frame is sampled (at least
every frame), and its timestamp is ``frame_number / fps`` in single precision. Frames are hashed as coded,
without the display rotation (as the reference does); the rotation is reported in :class:`VideoInfo`, whose
width and height are as displayed.

Frames are converted to RGB at full size by default, as the reference does: hashes of frames reduced first
(FFmpeg's area filter to 512 pixels) differ from the reference's by up to 12 bits on synthetic 720p video,
full-size frames by none, and decoding, not hashing, is what takes the time. ``max_side`` reduces them for
callers that only look (a contact sheet).
"""

from __future__ import annotations

import io
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Iterator

from ..errors import ItemError
from .sniff import is_video

if TYPE_CHECKING:
    import numpy as np

    from .item import Item

#: animated-image frames shorter than this (or without a duration) show for 100 ms in browsers, and here
_MIN_FRAME_MS = 11
_ANIMATED_TYPES = ("image/gif", "image/webp")


@dataclass
class VideoInfo:
    """What a video is: the ``video`` fact of an item record."""

    #: container format as FFmpeg names it (``mov,mp4,m4a,3gp,3g2,mj2``, ``matroska,webm``), or ``gif``/``webp``
    container: str
    codec: str | None
    #: seconds, as declared by the container (animated images: the sum of frame durations)
    duration: float | None
    fps: float | None
    #: as displayed: the rotation applied
    width: int
    height: int
    #: degrees clockwise the player turns the coded picture (display matrix), 0 when none
    rotation: int = 0
    #: frames decoded (set once the whole stream was read)
    frames: int | None = None
    #: streams by kind (``video``, ``audio``, ``subtitle``, ``data`` ...)
    streams: dict[str, int] = field(default_factory=dict)
    #: an animated GIF/WebP rather than a video container
    animated_image: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class SampledFrame:
    """One sampled frame: its number in decoding order, its time in seconds, its RGB pixels (reduced)."""

    number: int
    timestamp: float
    rgb: "np.ndarray"


def is_animated_image(item: "Item") -> bool:
    """A GIF or WebP with more than one frame (read from its header; a still image is not a video)."""
    if item.media_type not in _ANIMATED_TYPES or item.data is None:
        return False
    from PIL import Image

    try:
        with Image.open(io.BytesIO(item.data)) as img:
            return bool(getattr(img, "is_animated", False))
    except Exception:  # an undecodable image is the image reader's error to report, not a video
        return False


def is_video_item(item: "Item") -> bool:
    """Should this item be read as a video (a video container, or an animated GIF/WebP)?"""
    return is_video(item.media_type) or is_animated_image(item)


def _scaled(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    if max_side is None or max(width, height) <= max_side:
        return width, height
    scale = max_side / max(width, height)
    # a sliver keeps enough pixels for PDQ (8, or all it has)
    return max(min(width, 8), round(width * scale)), max(min(height, 8), round(height * scale))


class VideoReader:
    """One item read as a video: :attr:`info` from the headers, :meth:`frames` decodes and samples.

    ``threads``: FFmpeg decoding threads (1: a scan already runs one worker per core).
    """

    def __init__(self, item: "Item", threads: int = 1) -> None:
        if item.data is None:
            raise ItemError("too_large", "the video is larger than the decode cap and was only digested")
        self.item = item
        self.limits = item.limits
        self.threads = threads
        self.animated = item.media_type in _ANIMATED_TYPES
        self._container: Any = None
        self.info = self._probe_animated() if self.animated else self._probe_av()

    # -- headers ---------------------------------------------------------------------------------------------

    def _probe_av(self) -> VideoInfo:
        import av

        try:
            container = av.open(io.BytesIO(self.item.data or b""), mode="r")
        except (av.error.FFmpegError, ValueError, MemoryError) as exc:
            raise ItemError("decode_error", f"the video cannot be opened: {exc}") from exc
        self._container = container
        streams: dict[str, int] = {}
        for s in container.streams:
            streams[s.type] = streams.get(s.type, 0) + 1
        if len(container.streams) > self.limits.max_video_streams:
            self.close()
            raise ItemError("too_large", f"{len(container.streams)} streams exceed the cap of {self.limits.max_video_streams}")
        if not container.streams.video:
            self.close()
            raise ItemError("unsupported_media", "the container holds no video stream")
        stream = container.streams.video[0]
        ctx = stream.codec_context
        if ctx is None:  # a damaged header can name a codec FFmpeg has no decoder for
            self.close()
            raise ItemError("decode_error", "the video stream has no decoder (unknown or damaged codec header)")
        width, height = int(ctx.width or 0), int(ctx.height or 0)
        if width * height > self.limits.max_video_frame_pixels:
            self.close()
            raise ItemError("too_large", f"{width}x{height} frames exceed the cap of {self.limits.max_video_frame_pixels} pixels")
        rate = stream.average_rate or stream.base_rate
        fps = float(rate) if rate else None
        duration = None
        if stream.duration is not None and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / 1_000_000
        if duration is not None and duration > self.limits.max_video_seconds:
            self.close()
            raise ItemError("too_large", f"{duration:.0f} s of video exceeds the cap of {self.limits.max_video_seconds:.0f} s")
        rotation = _metadata_rotation(stream.metadata)
        info = VideoInfo(container=container.format.name, codec=ctx.name, duration=duration, fps=fps,
                         width=width, height=height, rotation=rotation, streams=streams)
        _apply_rotation(info, rotation)
        return info

    def _probe_animated(self) -> VideoInfo:
        img = self._open_pil()
        try:
            width, height = img.size
            if width * height > self.limits.max_video_frame_pixels:
                raise ItemError("too_large", f"{width}x{height} frames exceed the cap of {self.limits.max_video_frame_pixels} pixels")
            n = int(getattr(img, "n_frames", 1))
            if n > self.limits.max_video_frames:
                raise ItemError("too_large", f"{n} frames exceed the cap of {self.limits.max_video_frames}")
            total_ms = 0
            started = time.monotonic()
            for i in range(n):
                if time.monotonic() - started > self.limits.max_video_decode_s:
                    raise ItemError("timeout", f"reading the animation took more than {self.limits.max_video_decode_s:.0f} s")
                img.seek(i)
                img.load()  # Pillow's WebP reader sets a frame's duration when it decodes it
                total_ms += _frame_ms(img.info.get("duration"))
            duration = total_ms / 1000
            if duration > self.limits.max_video_seconds:
                raise ItemError("too_large", f"{duration:.0f} s of animation exceeds the cap of {self.limits.max_video_seconds:.0f} s")
            fmt = (img.format or "").lower()
        except ItemError:
            raise
        except Exception as exc:
            raise ItemError("decode_error", f"the animation cannot be read: {exc}") from exc
        finally:
            img.close()
        return VideoInfo(container=fmt, codec=fmt, duration=duration, fps=n / duration if duration else None,
                         width=width, height=height, frames=n, streams={"video": 1}, animated_image=True)

    def _open_pil(self) -> Any:
        from PIL import Image

        try:
            return Image.open(io.BytesIO(self.item.data or b""))
        except Exception as exc:
            raise ItemError("decode_error", f"the animation cannot be read: {exc}") from exc

    # -- frames ----------------------------------------------------------------------------------------------

    def frames(self, seconds_per_sample: float = 1.0, max_side: int | None = None) -> Iterator[SampledFrame]:
        """The sampled frames in order (see the module docs); ``info.frames`` is set once all were read."""
        if self.animated:
            yield from self._animated_frames(seconds_per_sample, max_side)
        else:
            yield from self._av_frames(seconds_per_sample, max_side)

    def _av_frames(self, seconds_per_sample: float, max_side: int | None) -> Iterator[SampledFrame]:
        import av
        import numpy as np

        limits = self.limits
        container = self._container
        if container is None:
            raise ValueError("the video was closed")
        stream = container.streams.video[0]
        stream.codec_context.thread_count = self.threads
        fps = self.info.fps
        every = max(1, int(seconds_per_sample * fps)) if fps else 1
        fps32 = np.float32(fps) if fps else None
        started = time.monotonic()
        decoded = packets = 0
        rotation_seen = False
        try:
            for packet in container.demux(stream):
                packets += 1
                if packets > 2 * limits.max_video_frames:
                    raise ItemError("too_large", f"more than {2 * limits.max_video_frames} packets without the frames they should hold")
                if time.monotonic() - started > limits.max_video_decode_s:
                    raise ItemError("timeout", f"decoding took more than {limits.max_video_decode_s:.0f} s")
                for frame in packet.decode():
                    number = decoded
                    decoded += 1
                    if decoded > limits.max_video_frames:
                        raise ItemError("too_large", f"more than {limits.max_video_frames} frames")
                    if frame.width * frame.height > limits.max_video_frame_pixels:
                        raise ItemError("too_large", f"a {frame.width}x{frame.height} frame exceeds the cap of {limits.max_video_frame_pixels} pixels")
                    if not rotation_seen:
                        rotation_seen = True
                        self._frame_rotation(frame)
                    if number % every:
                        continue
                    if fps32 is not None:
                        timestamp = float(np.float32(number) / fps32)
                    else:
                        timestamp = float(frame.time or 0.0)
                    w, h = _scaled(frame.width, frame.height, max_side)
                    rgb = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
                    yield SampledFrame(number, timestamp, rgb)
        except av.error.FFmpegError as exc:
            raise ItemError("decode_error", f"the video is truncated or corrupt after {decoded} frames: {exc}") from exc
        finally:
            self.close()
        self.info.frames = decoded

    def _frame_rotation(self, frame: Any) -> None:
        """The display matrix FFmpeg attaches to decoded frames (``rotate`` metadata is the older form)."""
        try:
            degrees = int(round(float(frame.rotation))) % 360
        except (AttributeError, TypeError, ValueError):
            return
        if degrees and not self.info.rotation:
            # PyAV reports the matrix's counter-clockwise angle; players turn the picture the other way
            clockwise = (-degrees) % 360
            self.info.rotation = clockwise
            _apply_rotation(self.info, clockwise)

    def _animated_frames(self, seconds_per_sample: float, max_side: int | None) -> Iterator[SampledFrame]:
        import numpy as np
        from PIL import Image

        limits = self.limits
        img = self._open_pil()
        started = time.monotonic()
        next_sample = 0.0
        t_ms = 0
        try:
            n = int(getattr(img, "n_frames", 1))
            for number in range(n):
                if time.monotonic() - started > limits.max_video_decode_s:
                    raise ItemError("timeout", f"decoding took more than {limits.max_video_decode_s:.0f} s")
                img.seek(number)
                img.load()
                length = _frame_ms(img.info.get("duration"))
                start = t_ms / 1000
                t_ms += length
                if t_ms / 1000 <= next_sample:
                    continue
                while next_sample < t_ms / 1000:
                    next_sample += seconds_per_sample if seconds_per_sample > 0 else 1e-9
                frame = img.convert("RGB")
                size = _scaled(frame.width, frame.height, max_side)
                if size != frame.size:
                    frame = frame.resize(size, Image.Resampling.BOX)
                yield SampledFrame(number, start, np.asarray(frame))
        except ItemError:
            raise
        except Exception as exc:
            raise ItemError("decode_error", f"the animation is truncated or corrupt: {exc}") from exc
        finally:
            img.close()
        self.info.frames = n

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
            self._container = None


def _metadata_rotation(metadata: Any) -> int:
    try:
        return int((metadata or {}).get("rotate", 0)) % 360
    except (TypeError, ValueError):
        return 0


def _apply_rotation(info: VideoInfo, rotation: int) -> None:
    """Width and height as displayed: swapped for a quarter turn (called once, when the rotation is found)."""
    if rotation in (90, 270):
        info.width, info.height = info.height, info.width


def _frame_ms(duration: Any) -> int:
    """How long an animation frame shows: its duration, or 100 ms when it has none or a tiny one (as browsers)."""
    try:
        ms = int(duration or 0)
    except (TypeError, ValueError):
        ms = 0
    return ms if ms >= _MIN_FRAME_MS else 100


#: the contact sheet's grid: tiles, columns, longest tile side, blur radius (reviewer wellbeing: SAFETY.md rule 7)
SHEET_TILES = 12
SHEET_COLUMNS = 4
SHEET_TILE_SIDE = 160
SHEET_BLUR = 6.0


def contact_sheet(item: "Item", tiles: int = SHEET_TILES, tile_side: int = SHEET_TILE_SIDE,
                  blur: float = SHEET_BLUR) -> bytes:
    """A PNG of up to ``tiles`` frames spread over the video, each small, greyscale and blurred, made on the fly
    for the review console and never stored: enough to see what kind of video it is without seeing it."""
    from PIL import Image, ImageFilter

    reader = VideoReader(item)
    duration = reader.info.duration or 0.0
    every = max(1.0, duration / tiles) if duration else 1.0
    shots: list[Image.Image] = []
    try:
        for frame in reader.frames(every, tile_side):
            shots.append(Image.fromarray(frame.rgb).convert("L").filter(ImageFilter.GaussianBlur(blur)))
            if len(shots) >= tiles:
                break
    finally:
        reader.close()
    if not shots:
        raise ItemError("decode_error", "the video has no frame to show")
    columns = min(SHEET_COLUMNS, len(shots))
    rows = -(-len(shots) // columns)
    cell_w, cell_h = max(s.width for s in shots), max(s.height for s in shots)
    sheet = Image.new("L", (columns * cell_w + (columns - 1) * 4, rows * cell_h + (rows - 1) * 4), 32)
    for n, shot in enumerate(shots):
        sheet.paste(shot, ((n % columns) * (cell_w + 4), (n // columns) * (cell_h + 4)))
    out = io.BytesIO()
    sheet.save(out, "PNG")
    return out.getvalue()
