"""Video files through the model's video path (Qwen's video processor: a ``{"type": "video"}`` chat entry
and ``processor(videos=..., video_metadata=...)``), decoded lazily with PyAV (``av`` on PyPI, FFmpeg
bundled in its wheels).

Two kinds of video exist in dualtune:

* the lab's clips: an ordered list of frames in the schema's ``video`` column, shown as "Frame k:" +
  image (unchanged);
* a published dataset's video file: the adapter writes ``meta["video"] = {"path", "fps", "max_frames",
  "max_pixels"}`` (`dualtune.prompting.templates.sample_video`) and leaves ``video`` empty. Nothing is
  decoded at load time (VSI-Bench has 5,130 questions over 288 videos); every encoding decodes the
  frames it needs: ``fps`` frames per second of video, at most ``max_frames`` (spread uniformly over the
  whole video when there are more), an even count (Qwen2.5-VL's temporal patch is 2 frames), each frame
  scaled to at most ``max_pixels`` pixels. The sampled frames' indices and the native fps go to the
  processor as ``VideoMetadata``, so the timestamps (``second_per_grid_ts``) are the real ones. A small
  LRU cache (`VIDEO_CACHE_SIZE` videos) serves the direct and CoT prompts of questions on the same video;
  memory stays bounded by it. Decoding is one sequential pass up to the last sampled frame (no seeking),
  so a long video costs a full decode each time it leaves the cache.

The sampling settings come from the domain config's ``options`` (``video_fps``, ``video_max_frames``,
``video_max_pixels``; `video_options`), so a sample says how it is shown and the caches key on it.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np

from dualtune.prompting.templates import sample_video

VIDEO_CACHE_SIZE = 4
DEFAULT_VIDEO_OPTIONS = {"video_fps": 1.0, "video_max_frames": 32, "video_max_pixels": 401408}


class VideoError(ValueError):
    """A video file that is missing or cannot be decoded; the message names the file."""


def video_options(options: dict) -> dict:
    """``{"fps", "max_frames", "max_pixels"}`` from a domain's ``options`` (defaults: `DEFAULT_VIDEO_OPTIONS`),
    checked: fps > 0, max_frames >= 1, max_pixels >= 784 (one 28x28 patch group)."""
    merged = {**DEFAULT_VIDEO_OPTIONS, **{k: v for k, v in (options or {}).items() if k in DEFAULT_VIDEO_OPTIONS}}
    fps, frames, pixels = float(merged["video_fps"]), int(merged["video_max_frames"]), int(merged["video_max_pixels"])
    if not (math.isfinite(fps) and fps > 0) or frames < 1 or pixels < 784:
        raise ValueError(f"domain.options: need video_fps > 0, video_max_frames >= 1, video_max_pixels >= 784; "
                         f"got {fps}, {frames}, {pixels}")
    return {"fps": fps, "max_frames": frames, "max_pixels": pixels}


@functools.lru_cache(maxsize=4096)
def probe_video(path: str) -> dict:
    """``{"frames", "fps", "width", "height"}`` of a video file from its container (no frame decoded);
    raises `VideoError` naming the file when it is missing or holds no video stream."""
    import av

    if not Path(path).is_file():
        raise VideoError(f"missing video file {path}")
    try:
        with av.open(path) as container:
            if not container.streams.video:
                raise VideoError(f"no video stream in {path}")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            frames = int(stream.frames or 0)
            if frames <= 0:  # some containers do not store the count: count the packets (no decoding)
                frames = sum(1 for packet in container.demux(stream) if packet.size)
            fps = float(rate) if rate else None
            if not fps and container.duration:
                fps = frames / (container.duration / 1_000_000)
            info = {"frames": frames, "fps": fps or 1.0, "width": stream.width, "height": stream.height}
    except VideoError:
        raise
    except Exception as err:  # noqa: BLE001 - any container error means "undecodable"
        raise VideoError(f"undecodable video {path}: {type(err).__name__}: {err}") from err
    if info["frames"] <= 0:
        raise VideoError(f"video {path} has no frames")
    return info


def frame_indices(total: int, native_fps: float, fps: float, max_frames: int) -> list[int]:
    """Indices of the frames shown: ``fps`` per second of video (at least 1), at most ``max_frames`` and at
    most ``total``, spread uniformly from the first to the last frame; an even count when more than one."""
    wanted = max(1, math.floor(total / native_fps * fps)) if native_fps > 0 else max_frames
    n = min(wanted, max_frames, total)
    if n > 1 and n % 2:
        n -= 1
    if n == 1:
        return [0]
    return [round(i * (total - 1) / (n - 1)) for i in range(n)]


def _scaled_size(width: int, height: int, max_pixels: int) -> tuple[int, int]:
    """(width, height) scaled down to at most ``max_pixels`` pixels, aspect kept (never scaled up)."""
    if width * height <= max_pixels:
        return width, height
    scale = math.sqrt(max_pixels / (width * height))
    return max(1, int(width * scale)), max(1, int(height * scale))


@functools.lru_cache(maxsize=VIDEO_CACHE_SIZE)
def read_video(path: str, fps: float, max_frames: int, max_pixels: int) -> tuple[np.ndarray, dict]:
    """``(frames [T, H, W, 3] uint8, metadata)`` of the sampled frames (`frame_indices`), decoded in one pass
    that keeps only those frames; metadata: ``total_num_frames, fps, frames_indices, width, height,
    duration``. Raises `VideoError` naming the file when it is missing or fails to decode."""
    import av

    info = probe_video(path)
    indices = frame_indices(info["frames"], info["fps"], fps, max_frames)
    wanted = set(indices)
    width, height = _scaled_size(info["width"], info["height"], max_pixels)
    kept: dict[int, np.ndarray] = {}
    try:
        with av.open(path) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    kept[i] = frame.to_ndarray(format="rgb24", width=width, height=height)
                if i >= indices[-1]:
                    break
    except Exception as err:  # noqa: BLE001
        raise VideoError(f"undecodable video {path}: {type(err).__name__}: {err}") from err
    if not kept:
        raise VideoError(f"undecodable video {path}: no frame decoded")
    # A container that reported more frames than it decodes: repeat the last decoded frame.
    last = kept[max(kept)]
    frames = np.stack([kept.get(i, last) for i in indices])
    frames.flags.writeable = False
    meta = {"total_num_frames": info["frames"], "fps": info["fps"], "frames_indices": list(indices),
            "width": width, "height": height, "duration": info["frames"] / info["fps"]}
    return frames, meta


def sample_videos(sample: dict) -> list[tuple[np.ndarray, dict]]:
    """The decoded video file(s) of ``sample`` (``[(frames, metadata)]``, empty for none); raises `VideoError`
    naming the sample and the file when it cannot be read."""
    spec = sample_video(sample)
    if spec is None:
        return []
    try:
        return [read_video(str(spec["path"]), float(spec["fps"]), int(spec["max_frames"]), int(spec["max_pixels"]))]
    except VideoError as err:
        raise VideoError(f"sample {sample.get('id')!r}: {err}") from err


def video_processor_kwargs(videos: list[tuple[np.ndarray, dict]]) -> dict:
    """Keyword arguments for ``processor(...)``: the frames, their `VideoMetadata` (real indices and fps,
    so the processor's timestamps are right) and no second sampling; {} without videos."""
    if not videos:
        return {}
    from transformers.video_utils import VideoMetadata

    metadata = [VideoMetadata(video_backend="pyav", **meta) for _, meta in videos]
    # A copy per call: the cached frames stay read-only whatever the processor does with its input.
    return {"videos": [np.array(frames) for frames, _ in videos], "video_metadata": metadata,
            "do_sample_frames": False}

