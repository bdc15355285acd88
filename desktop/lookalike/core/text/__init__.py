"""Text in photos: the words a photo shows, read by OCR, searchable with ``text:``.

- :mod:`.schema`: the catalog tables (``photo_text`` and its full-text index).
- :mod:`.ocr`: the reader (RapidOCR's PP-OCRv4 models on ONNX Runtime) and how text
  is normalised for matching.
- :mod:`.store`: writing a photo's text, and which photos hold given words.
- :mod:`.stage`: :class:`~.stage.TextStage`, the indexing stage that reads photos
  after the likeness indexing, in the background.

Nothing is imported here: the catalog imports :mod:`.schema` for its migration.
"""
