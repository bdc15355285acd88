"""The window opened on an indexed library answers text searches without the image model."""

from __future__ import annotations

from tests.gui.conftest import search, wait_idle


def test_text_search_in_a_new_window_loads_no_image_model(qtbot, library_copy, make_window):
    from lookalike.core.engine import SearchEngine

    # As on a user's machine after indexing: the model's derived files are in the model cache
    # (this session's encoder may have been loaded with another cache folder: written here).
    with SearchEngine.open(library_copy) as engine:
        engine.encoder()._concept_texts(None, None)
    window = make_window()
    wait_idle(qtbot, window)  # the library open, its catch-up re-scan done (nothing new)
    assert search(qtbot, window, "a cat")[0] == "cat.jpg"
    engine = window.service.engine
    # torch and the image model (about 0.5 GB resident) wait until a photo needs encoding,
    assert not engine.encoder_loaded
    # and a re-scan that found nothing new left the graph in its file.
    assert engine._vectors is None or engine._vectors._graph is None
