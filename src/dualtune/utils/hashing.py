"""Stable hashes for cache keys and provenance."""

from __future__ import annotations

import functools
import hashlib
import json
import subprocess

from dualtune.utils.image_refs import ImageRef


def stable_hash(obj, length: int = 16) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys), truncated to ``length`` hex chars."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(obj, (DictConfig, ListConfig)):
        obj = OmegaConf.to_container(obj, resolve=True)
    blob = json.dumps(obj, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:length]


def git_sha() -> str | None:
    """The current git commit of the code (None outside a git checkout)."""
    from pathlib import Path

    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def image_digest(img) -> str:
    """SHA-256 of an image's content, cheap enough to key caches by.

    A PIL image: its mode, size and raw pixel bytes. A ``datasets`` image dict ``{"bytes", "path"}``:
    its encoded bytes, else the bytes of the file at ``path``; a plain string is a file path; a lazy
    `dualtune.utils.image_refs.ImageRef`: the encoded image it points to (read for hashing, not kept).
    """
    if isinstance(img, ImageRef):
        img = img.encoded()
    h = hashlib.sha256()
    if hasattr(img, "tobytes") and hasattr(img, "mode") and hasattr(img, "size"):  # a PIL image
        h.update(f"pil|{img.mode}|{img.size[0]}x{img.size[1]}|".encode())
        h.update(img.tobytes())
        return h.hexdigest()
    if isinstance(img, str):
        img = {"bytes": None, "path": img}
    if isinstance(img, dict) and (img.get("bytes") or img.get("path")):
        data = img.get("bytes")
        if not data:
            with open(img["path"], "rb") as fh:
                data = fh.read()
        h.update(b"encoded|")
        h.update(bytes(data))
        return h.hexdigest()
    raise TypeError(f"cannot hash image content of a {type(img).__name__}")


def file_fingerprint(path: str) -> str:
    """Cheap content fingerprint of a (large) file, e.g. a video: its size plus its first and last 64 KiB
    (memoized per path, size and modification time)."""
    import os

    st = os.stat(path)
    return _file_fingerprint(str(path), st.st_size, st.st_mtime_ns)


@functools.lru_cache(maxsize=4096)
def _file_fingerprint(path: str, size: int, _mtime_ns: int) -> str:
    h = hashlib.sha256(f"file|{size}|".encode())
    with open(path, "rb") as fh:
        h.update(fh.read(1 << 16))
        if size > 1 << 17:
            fh.seek(-(1 << 16), 2)
            h.update(fh.read(1 << 16))
    return h.hexdigest()


def _video_file(sample: dict) -> dict | None:
    """A sample's video file (``meta["video"]``, see `dualtune.data.video`) as its sampling settings plus the
    file's fingerprint; None when it has none (or the file is missing: the loader reports that)."""
    meta = sample.get("meta") or {}
    try:
        meta = json.loads(meta) if isinstance(meta, str) else dict(meta)
    except ValueError:
        return None
    spec = meta.get("video") if isinstance(meta, dict) else None
    if not isinstance(spec, dict) or not spec.get("path"):
        return None
    try:
        content = file_fingerprint(str(spec["path"]))
    except OSError:
        content = None
    return {**{k: v for k, v in spec.items() if k != "path"}, "content": content}


def visual_digest(sample: dict) -> str:
    """Hash of a sample's visual content: its images, then its video frames, in order, and its video file
    (fingerprint and frame-sampling settings) when it has one."""
    visual = {"images": [image_digest(i) for i in sample.get("images") or []],
              "video": [image_digest(f) for f in sample.get("video") or []]}
    video_file = _video_file(sample)
    if video_file is not None:  # only then: digests of samples without one are unchanged
        visual["video_file"] = video_file
    return stable_hash(visual, length=32)


def sample_digest(sample: dict) -> str:
    """Hash of what a sample's generations depend on besides the model: id, question, options, answer, answer
    type and its visual content (`visual_digest`). Score stores and CoT sources key their rows by it, so a
    changed image or question invalidates both."""
    return stable_hash([sample["id"], sample.get("question"), list(sample.get("options") or []),
                        sample.get("answer"), sample.get("answer_type"), visual_digest(sample)])
