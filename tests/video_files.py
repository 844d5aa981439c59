"""Test helper: tiny mp4 videos written with the decoder dualtune reads them with (PyAV), e.g. in a dataset's
published layout (``scannet/scene0000_00.mp4``, or inside ``arkitscenes.zip``)."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np


def write_mp4(path: Path, n_frames: int = 8, size: int = 56, fps: int = 4) -> Path:
    """An ``n_frames`` MPEG-4 clip at ``path`` (parent folders created): frame k is a flat grey of level
    30*k with a white square moving right, so sampled frames differ."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = size, size, "yuv420p"
        for k in range(n_frames):
            frame = np.full((size, size, 3), (30 * k) % 256, np.uint8)
            x = (k * 6) % (size - 8)
            frame[8:16, x:x + 8] = 255
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    return path


def write_zip(archive: Path, members: dict[str, Path]) -> Path:
    """A zip at ``archive`` holding each file of ``members`` (name inside the zip -> file on disk)."""
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        for name, file in members.items():
            zf.write(file, name)
    return archive
