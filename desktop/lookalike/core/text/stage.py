"""The text stage: photos read by OCR after the likeness indexing, in the background.

It is never run beside the encoder on new photos: the engine runs it once the
likeness indexing of a run is committed and its graph saved (a second, text-only
pass of the indexer: a scan, then only this stage's ``pending()`` photos, decoded
for it alone). So photos become searchable by likeness as fast as without it, and
their text follows. A run killed while reading loses at most the commit batch being
read: every batch of photos read is committed with their text, and the next run
reads those still pending. A moved photo keeps its text (same id); a changed one is
a new photo and is read again; a deleted one loses its row (``ON DELETE CASCADE``).
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections.abc import Sequence

from lookalike.core.progress import CancelToken, Stage
from lookalike.core.stages import PhotoStage, StagePhoto
from lookalike.core.text import store
from lookalike.core.text.ocr import Line, Reader, TextRead

log = logging.getLogger(__name__)

#: Short side (pixels) a photo is decoded at for reading: small print on a photographed
#: page stays legible, and a huge photo is decoded (draft mode) no larger than about this.
IMAGE_SIZE = 1280


def text_enabled() -> bool:
    """Whether indexing reads text: the engine is installed and ``LOOKALIKE_TEXT`` is not
    ``0`` (or ``off``/``no``)."""
    from lookalike.core.text.ocr import available

    return os.environ.get("LOOKALIKE_TEXT", "").strip().lower() not in ("0", "off", "no") and available()


class TextStage(PhotoStage[TextRead]):
    """Reads each photo's text (see :mod:`lookalike.core.text.ocr`) and writes it to the catalog."""

    stage = Stage.TEXT
    image_size = IMAGE_SIZE

    def __init__(self, reader: Reader | None = None) -> None:
        self.reader = reader or Reader()

    def prepare(self) -> None:
        self.reader.load()

    def process(self, photos: Sequence[StagePhoto], cancel: CancelToken) -> list[TextRead]:
        out: list[TextRead] = []
        for p in photos:
            if cancel.cancelled:
                break
            image = p.decoded.image
            try:
                read = self.reader.read(image)
            except Exception:  # one odd image must not stop the others
                log.exception("Cannot read the text in %s", p.path)
                read = TextRead(failed=True)
            out.append(_in_original_pixels(read, p.decoded.width / max(1, image.width)))
        return out

    def write(self, conn: sqlite3.Connection, ids: Sequence[int], outputs: Sequence[TextRead]) -> None:
        store.write(conn, ids, outputs)

    def pending(self, conn: sqlite3.Connection) -> set[int]:
        return store.pending(conn)

    def close(self) -> None:
        self.reader.close()


def _in_original_pixels(read: TextRead, scale: float) -> TextRead:
    if abs(scale - 1.0) < 1e-6 or not read.lines:
        return read
    lines = tuple(
        Line(line.text, line.score, tuple((round(x * scale), round(y * scale)) for x, y in line.box))
        for line in read.lines
    )
    return TextRead(lines, read.probed, read.failed)
