"""Deterministic drawing primitives for the reasoning lab.

Every image is a grid of 28x28 px cells. The tiny Qwen2.5-VL-style vision encoder uses 14 px
patches merged 2x2, so **one cell is exactly one visual token**. A cell is either empty (white) or
holds one large filled shape (circle / square / triangle) in one of six saturated colors.
Still images default to 4x4 cells (112x112 px), video frames to 2x2 cells (56x56 px).

Rows and columns are 1-based in questions and in ``meta``: row 1 is the top row, column 1 the
leftmost column. A *scene* is a dict ``{(row, col): (shape, color)}``.

Drawing uses PIL's ImageDraw without anti-aliasing, and PNG bytes are written with fixed settings,
so the same scene always yields the same pixels and the same bytes.
"""

from __future__ import annotations

import io
import random

from PIL import Image, ImageDraw

CELL = 28
GRID_ROWS = 4
GRID_COLS = 4
FRAME_ROWS = 2
FRAME_COLS = 2
WHITE = (255, 255, 255)
MARGIN = 3  # px left free around a shape so neighbouring shapes stay separate

COLORS = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 80, 220),
    "yellow": (240, 210, 20),
    "purple": (140, 50, 180),
    "orange": (250, 130, 20),
}
COLOR_NAMES = tuple(COLORS)
SHAPES = ("circle", "square", "triangle")
BAR_COLOR = "blue"

# Systematic "perceptual neighbour" confusions used by planted noise: an annotator who misreads
# a color names its hue-wheel neighbour, a misread shape becomes the next shape in this cycle.
COLOR_CONFUSION = {
    "red": "orange",
    "orange": "yellow",
    "yellow": "green",
    "green": "blue",
    "blue": "purple",
    "purple": "red",
}
SHAPE_CONFUSION = {"circle": "square", "square": "triangle", "triangle": "circle"}


def cell_box(row: int, col: int) -> tuple[int, int, int, int]:
    """Pixel box (x0, y0, x1, y1), inclusive, of the 1-based cell (row, col)."""
    x0, y0 = (col - 1) * CELL, (row - 1) * CELL
    return x0, y0, x0 + CELL - 1, y0 + CELL - 1


def cell_center(row: int, col: int) -> tuple[int, int]:
    """Pixel (x, y) at the centre of the 1-based cell (row, col)."""
    x0, y0, _, _ = cell_box(row, col)
    return x0 + CELL // 2, y0 + CELL // 2


def draw_shape(draw: ImageDraw.ImageDraw, row: int, col: int, shape: str, color: str) -> None:
    """Draw one filled ``shape`` of ``color`` filling most of cell (row, col)."""
    x0, y0, x1, y1 = cell_box(row, col)
    box = (x0 + MARGIN, y0 + MARGIN, x1 - MARGIN, y1 - MARGIN)
    rgb = COLORS[color]
    if shape == "circle":
        draw.ellipse(box, fill=rgb)
    elif shape == "square":
        draw.rectangle(box, fill=rgb)
    elif shape == "triangle":
        cx = (box[0] + box[2]) // 2
        draw.polygon([(cx, box[1]), (box[0], box[3]), (box[2], box[3])], fill=rgb)
    else:
        raise ValueError(f"unknown shape {shape!r}; expected one of {SHAPES}")


def render_grid(scene: dict, rows: int = GRID_ROWS, cols: int = GRID_COLS) -> Image.Image:
    """RGB image of a ``rows`` x ``cols`` grid with ``scene`` {(row, col): (shape, color)} drawn in."""
    img = Image.new("RGB", (cols * CELL, rows * CELL), WHITE)
    draw = ImageDraw.Draw(img)
    for (row, col), (shape, color) in sorted(scene.items()):
        if not (1 <= row <= rows and 1 <= col <= cols):
            raise ValueError(f"cell ({row}, {col}) is outside a {rows}x{cols} grid")
        draw_shape(draw, row, col, shape, color)
    return img


def bar_scene(heights: list[int], rows: int = GRID_ROWS, color: str = BAR_COLOR) -> dict:
    """Scene of a bar chart: bar k (1-based) is column k, filled with ``heights[k-1]`` square cells
    stacked from the bottom row up."""
    scene = {}
    for col, height in enumerate(heights, start=1):
        if not 0 <= height <= rows:
            raise ValueError(f"bar height {height} does not fit {rows} rows")
        for level in range(height):
            scene[(rows - level, col)] = ("square", color)
    return scene


def render_bars(heights: list[int], rows: int = GRID_ROWS, color: str = BAR_COLOR) -> Image.Image:
    """Bar chart image: one column of cells per bar, height = number of filled cells."""
    return render_grid(bar_scene(heights, rows, color), rows=rows, cols=len(heights))


def render_clip(frame_scenes: list, rows: int = FRAME_ROWS, cols: int = FRAME_COLS) -> list[Image.Image]:
    """Independent video frames: frame k draws only ``frame_scenes[k]`` {(row, col): (shape, color)}."""
    return [render_grid(scene, rows=rows, cols=cols) for scene in frame_scenes]


def png_bytes(img: Image.Image) -> bytes:
    """Deterministic PNG encoding of ``img`` (fixed compression, no metadata)."""
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6, optimize=False)
    return buf.getvalue()


def all_cells(rows: int = GRID_ROWS, cols: int = GRID_COLS) -> list[tuple[int, int]]:
    """Every (row, col) of a grid in reading order."""
    return [(r, c) for r in range(1, rows + 1) for c in range(1, cols + 1)]


def random_scene(
    rng: random.Random,
    n: int,
    colors=COLOR_NAMES,
    shapes=SHAPES,
    cells=None,
    scene: dict | None = None,
) -> dict:
    """Add ``n`` shapes with random shape/color (from ``colors``/``shapes``) on random free ``cells``."""
    scene = dict(scene or {})
    free = [cell for cell in (cells or all_cells()) if cell not in scene]
    if n > len(free):
        raise ValueError(f"cannot place {n} shapes on {len(free)} free cells")
    for cell in rng.sample(free, n):
        scene[cell] = (rng.choice(list(shapes)), rng.choice(list(colors)))
    return scene


def scene_to_meta(scene: dict) -> list[list]:
    """JSON-friendly list [[row, col, shape, color], ...] in reading order."""
    return [[r, c, s, col] for (r, c), (s, col) in sorted(scene.items())]


def describe_positions(positions) -> str:
    """Text like 'row 1 column 2, row 3 column 4' for ``positions`` (used in count rationales)."""
    return ", ".join(f"row {r} column {c}" for r, c in positions) if positions else "none"


def enumerate_rows(scene: dict, rows: int = GRID_ROWS) -> str:
    """Long readout of every row: 'Row 1: column 2 red circle, column 4 blue square. Row 2: empty.'"""
    parts = []
    for row in range(1, rows + 1):
        items = [f"column {c} {color} {shape}" for (r, c), (shape, color) in sorted(scene.items()) if r == row]
        parts.append(f"Row {row}: " + (", ".join(items) if items else "empty") + ".")
    return " ".join(parts)
