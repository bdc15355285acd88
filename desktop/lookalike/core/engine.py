"""The facade the command line and the window both call.

``SearchEngine`` owns one library (catalog + graph) and one encoder, loaded
lazily: opening a library and listing its folders never imports torch.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.core.errors import LookalikeError, QueryError, UsageError
from lookalike.core.progress import CancelToken, ProgressCallback, no_progress
from lookalike.core.search.results import SearchResult
from lookalike.core.store.catalog import Folder
from lookalike.core.store.library import Library, ModelRecord

if TYPE_CHECKING:
    from lookalike.core.encoders.base import Encoder
    from lookalike.core.encoders.offline_text import OfflineTextEncoder
    from lookalike.core.faces import People
    from lookalike.core.faces.people import PersonSelection
    from lookalike.core.index.indexer import IndexReport
    from lookalike.core.learning.learner import Learner
    from lookalike.core.search.answer import Answer
    from lookalike.core.search.browse import BrowseColumns, BrowseItem
    from lookalike.core.search.model import Query
    from lookalike.core.store.catalog import Catalog, PhotoRow
    from lookalike.core.store.vectors import VectorIndex
    from lookalike.core.text.store import PhotoText

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LibraryStatus:
    path: Path
    photos: int
    folders: int
    failures: int
    model_id: str  # the id of the encoder that built the library, weights included ("" while nothing is indexed)
    model_name: str  # the model's registry name as users name it: offline, clip, resnet50
    dimension: int
    device: str  # where the loaded model computes ("" until it is loaded; SearchEngine.device() resolves it)
    writer: bool
    holder: str | None  # who else holds the writer lock, if anyone
    note: str = ""  # what the model knows, in a sentence


@dataclass(frozen=True)
class Failure:
    path: Path
    reason: str


def _writes(what: str):
    """The method writes the library: it runs inside ``self.writing(what)``."""

    def wrap(method):
        @functools.wraps(method)
        def run(self, *args, **kwargs):
            with self.writing(what):
                return method(self, *args, **kwargs)

        return run

    return wrap


class SearchEngine:
    def __init__(
        self, library: Library, *, model: str | None = None, model_file: Path | None = None, device: str | None = None
    ) -> None:
        self.library = library
        record = library.model_record()
        # A model named by the caller is checked against the library before any work;
        # otherwise the library's own model is loaded only when something needs it.
        self._explicit_model = model is not None or model_file is not None
        if model is None and model_file is None and record is not None:
            model = record.name or None
            model_file = Path(record.model_file) if record.model_file else None
        if model_file is not None and model is None:
            model = "clip"
        from lookalike.core.encoders import DEFAULT_ENCODER

        self.model_name = model or DEFAULT_ENCODER
        self.model_file = Path(model_file).expanduser().resolve() if model_file else None
        self.device_request = device
        self._encoder: Encoder | None = None
        self._encoder_lock = threading.Lock()
        self._vectors: VectorIndex | None = None
        self._vectors_lock = threading.Lock()
        self._index_lock = threading.Lock()
        self._people: People | None = None
        self._learner: Learner | None = None
        self._model_failed = False  # the model could not be loaded (see close)
        self._lazy_lock = threading.RLock()  # builds people() and learner() once
        library.before_release = self._save_if_changed

    @classmethod
    def open_on_demand(
        cls,
        library: Path | None = None,
        *,
        model: str | None = None,
        model_file: Path | None = None,
        device: str | None = None,
        create: bool | None = True,
    ) -> SearchEngine:
        """Open ``library`` to search and to write, holding its writer lock only while writing
        (see :meth:`writing`): the window's way, so the command line can write meanwhile."""
        from lookalike.core.store.paths import app_paths

        path = library
        if path is None and (model or model_file):
            path = app_paths().library_to_open(None, model, model_file)
        lib = Library(path, on_demand=True, create=create)
        try:
            return cls(lib, model=model, model_file=model_file, device=device)
        except BaseException:
            lib.close()
            raise

    @contextmanager
    def writing(self, what: str = "change the library") -> Iterator[None]:
        """Everything that writes the library runs inside this block (it nests). A library
        opened on demand takes the writer lock here (LibraryLockedError, worded for ``what``,
        while another process writes) and saves the graph and lets the lock go at the end."""
        with self.library.writing(what) as first:
            if first:
                # What was set up while only reading: the model's record, the faces' tables.
                if self._encoder is not None and self.library.model_record() is None:
                    self.library.bind_model(self._record(self._encoder))
                if self._people is not None:
                    self._people.store.ensure_schema()
            yield

    def _save_if_changed(self) -> None:
        if self._vectors is not None and (
            self._vectors.needs_save or self._vectors.generation != self._saved_generation()
        ):
            try:
                self._save_graph()
            except OSError as exc:  # a cache: the next open rebuilds it from the catalog
                log.warning("Could not save the vector graph: %s", exc)

    @classmethod
    def open(
        cls,
        library: Path | None = None,
        *,
        model: str | None = None,
        model_file: Path | None = None,
        device: str | None = None,
        writer: bool = False,
        create: bool | None = None,
        purpose: str = "index",
    ) -> SearchEngine:
        """Open ``library``; with none named, the named model's library, else the current model's.

        ``purpose`` words the message when ``writer`` is asked and another process writes."""
        from lookalike.core.store.paths import app_paths

        path = library
        if path is None and (model or model_file):  # None: Library opens the current model's
            path = app_paths().library_to_open(None, model, model_file)
        lib = Library(path, writer=writer, create=create, purpose=purpose)
        try:
            return cls(lib, model=model, model_file=model_file, device=device)
        except BaseException:
            lib.close()
            raise

    def __enter__(self) -> SearchEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def catalog(self) -> Catalog:
        return self.library.catalog

    @property
    def path(self) -> Path:
        """The library's folder."""
        return self.library.path

    def photo_count(self) -> int:
        return self.catalog.photo_count()

    def photos(self, ids: Sequence[int]) -> dict[int, PhotoRow]:
        """The library's records of these photos, by id (ids not in the library left out)."""
        return self.catalog.photos_by_ids(ids)

    # -- the model ----------------------------------------------------------

    @property
    def encoder_loaded(self) -> bool:
        return self._encoder is not None

    def device(self) -> str:
        """The device the model computes on: the loaded encoder's, else the one it will load on
        (the device asked for, or the best one here)."""
        if self._encoder is not None:
            return str(self._encoder.device)
        from lookalike.core.encoders.base import pick_device

        return pick_device(self.device_request)

    def encoder(self, progress: ProgressCallback | None = None, cancel: CancelToken | None = None) -> Encoder:
        """The encoder, loaded on first use; checked against the library's record."""
        with self._encoder_lock:
            if self._encoder is None:
                from lookalike.core.encoders import load_encoder

                try:
                    enc = load_encoder(
                        self.model_name,
                        model_file=self.model_file,
                        device=self.device_request,
                        progress=progress,
                        cancel=cancel,
                    )
                except BaseException:
                    self._model_failed = True
                    raise
                self.library.bind_model(self._record(enc))
                self._encoder = enc
            return self._encoder

    def _record(self, enc: Encoder | OfflineTextEncoder) -> ModelRecord:
        return ModelRecord(
            self.model_name,
            enc.id,
            enc.weights_checksum,
            int(enc.dimension),
            os.fspath(self.model_file) if self.model_file else "",
        )

    def vectors(self) -> VectorIndex:
        """The vector index, opened (and repaired if needed) on first use."""
        with self._vectors_lock:
            if self._vectors is None:
                from lookalike.core.store.vectors import VectorIndex

                record = self.library.model_record()
                dim = record.dimension if record else int(self.encoder().dimension)
                self._vectors = VectorIndex.open(self.library.path, self.catalog, dim)
                # A graph rebuilt from the catalog is saved at once, so that the next
                # open does not rebuild it again (its sidecar may still look current).
                if self.library.writer and (
                    self._vectors.repaired or self._vectors.generation != self._saved_generation()
                ):
                    self._save_graph()
            else:
                self._vectors.refresh(self.catalog)
                if self._vectors.needs_save and self.library.writer:  # found damaged and rebuilt since
                    self._save_graph()
            return self._vectors

    def _saved_generation(self) -> int:
        from lookalike.core.store.vectors import VectorIndex

        return VectorIndex.saved_generation(self.library.path)

    def _save_graph(self) -> None:
        if self._vectors is not None and self.library.writer:
            self._vectors.save(self.library.path, self.catalog.generation())

    # -- queries ------------------------------------------------------------

    def parse(self, text: str) -> Query:
        from lookalike.core.search.parse import parse

        return parse(text)

    def embed(self, query: str | Query) -> np.ndarray:
        from lookalike.core.search.embed import embed
        from lookalike.core.search.parse import parse

        q: Query = parse(query) if isinstance(query, str) else query
        if q.is_empty:
            raise QueryError("the query is empty: type words, or add a photo", getattr(q, "source", ""), 0)
        enc = self._text_encoder() if q.has_text else None
        if enc is not None and not enc.supports_text:
            for t in q.terms:
                if t.kind == "text":
                    raise QueryError(
                        f"the model '{self.model_name}' is image-only and cannot read text; "
                        "search with photos, or use the offline model or CLIP",
                        q.source,
                        t.column,
                    )

        def encode_texts(texts: list[str]) -> np.ndarray:
            assert enc is not None  # texts come only from a query with text, which loaded the encoder
            return enc.encode_texts(texts)

        return embed(
            q,
            encode_texts,
            lambda p: self._image_vector(Path(p), q),
            lambda t: self.learner().concepts.query_direction(t, q.source),
        )

    def query_encoder(self) -> Encoder | OfflineTextEncoder:
        """Load what a text query needs and return it: for the offline model its torch-free
        text tower (the image model, and torch, wait until a photo needs encoding), else
        the encoder."""
        return self._text_encoder()

    def _text_encoder(self) -> Encoder | OfflineTextEncoder:
        """What encodes the query's text: the loaded encoder, or for the offline
        model its torch-free text tower (same vectors, milliseconds instead of the
        seconds torch takes to import), which is checked against the library too."""
        if self._encoder is not None:
            return self._encoder
        if self.model_name == "offline" and self.model_file is None:
            from lookalike.core.encoders.offline_text import load_offline_text_encoder

            tower = load_offline_text_encoder()
            if tower is not None:
                self.library.check_model(self._record(tower))
                return tower
        return self.encoder()

    def _image_vector(self, path: Path, q: Query) -> np.ndarray:
        row = self.catalog.photo_by_path(path)
        if row is not None:
            try:
                st = path.stat()
                if st.st_size == row.size and st.st_mtime_ns == row.mtime_ns:
                    vec = self.catalog.vector(row.id)
                    if vec is not None:
                        return vec
            except OSError:
                pass
        from lookalike.core.index.imaging import ImageDecodeError, decode_file

        enc = self.encoder()
        try:
            decoded = decode_file(path, target=int(getattr(enc, "image_size", 224) or 224))
        except ImageDecodeError as exc:
            col = next((t.column for t in q.terms if t.kind == "image" and Path(t.value) == path), 0)
            raise QueryError(f"cannot use {path.name} as a query photo: {exc}", q.source, col) from None
        return enc.encode_images([decoded.image])[0]

    def learner(self) -> Learner:
        """Tags and concepts of this library: :class:`lookalike.core.learning.learner.Learner`."""
        with self._lazy_lock:  # one Learner for every thread (two would each learn, and race)
            if self._learner is None:
                from lookalike.core.learning.learner import Learner

                self._learner = Learner(
                    self.catalog,
                    lambda texts: self._text_encoder().encode_texts(texts),
                    # learning reads vectors where the index keeps them (none before a model is recorded)
                    lambda: self.vectors() if self.library.model_record() is not None else None,
                )
                concepts = self._learner.concepts
                if self.library.can_write and concepts.stale():  # a killed run left one unlearned: learn it now
                    try:
                        with self.writing("learn a concept again"):
                            concepts.ensure_current()
                    except LookalikeError as exc:  # another process writes: the next index learns it
                        log.info("Not relearning the concepts now: %s", exc)
            return self._learner

    def _filtered(self, q: Query, allowed: np.ndarray | None) -> np.ndarray | None:
        from lookalike.core.search.browse import allowed_ids

        chosen = allowed_ids(self.catalog, q, concepts=self.learner().concepts)
        if chosen is None:
            return allowed
        return chosen if allowed is None else np.intersect1d(allowed, chosen)

    def _browse_results(self, allowed: np.ndarray | None, k: int) -> list[SearchResult]:
        from lookalike.core.search.browse import browse

        items = browse(self.catalog, allowed, limit=k)
        return [
            SearchResult(n + 1, i.path, float("nan"), i.photo_id, i.width, i.height, i.taken, i.size)
            for n, i in enumerate(items)
        ]

    def browse(
        self,
        query: str | Query | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        folder: Path | str | None = None,
        columns: bool = False,
    ) -> list[BrowseItem] | BrowseColumns:
        """The photos a query of filters (people, concepts) allows, or the whole library,
        newest first (date taken, else file time): :class:`lookalike.core.search.browse.BrowseItem`,
        or with ``columns`` all of them as one :class:`lookalike.core.search.browse.BrowseColumns`
        (the window's grid at 100,000 photos)."""
        from lookalike.core.search.browse import browse, browse_columns

        q = self.parse(query) if isinstance(query, str) else query
        allowed = None
        if folder is not None:
            allowed = self.catalog.ids_in_folder(Path(folder).expanduser().resolve())
        if q is not None:
            if q.has_text or q.has_image:
                raise UsageError("this query ranks photos: search it instead of listing it")
            allowed = self._filtered(q, allowed)
            persons = self._persons(q)
            if persons is not None:
                allowed = persons.narrow(allowed, self.catalog.all_ids)
        if columns:
            return browse_columns(self.catalog, allowed)
        return browse(self.catalog, allowed, limit=limit, offset=offset)

    def people_if_open(self) -> People | None:
        """People, if something opened it already (else None: nothing to bring up to date)."""
        return self._people

    def people(self) -> People:
        """The library's People (faces, persons, names): :class:`lookalike.core.faces.People`."""
        with self._lazy_lock:  # one People for every thread: an index's face stage and its finish share it
            if self._people is None:
                from lookalike.core.faces import People

                self._people = People(self.library)
            return self._people

    def _persons(self, q: Query) -> PersonSelection | None:
        """The photos a query's person terms choose (None without any: a query without
        them never loads People, which a cold text query would pay ~0.1 s for)."""
        if not any(getattr(t, "kind", "") in ("person", "face") for t in q.terms):
            return None
        return self.people().select(q.terms, q.source)

    @_writes("bring concepts and people from the previous library")
    def adopt_library(self, folder: Path | str) -> tuple[int, int]:
        """A library being built for a new image model takes the user's decisions from the
        library in ``folder`` (the previous model's; opened read only): taught concepts,
        learned again on this library's vectors, and decisions about people (names, merges,
        "not this person", hidden people), applied as the same faces are found here.
        Nothing happens when this library has photos already, or ``folder`` is this
        library, absent or unreadable. Returns (concepts, face decisions) brought."""
        from lookalike.core.store.catalog import Catalog

        path = Path(folder) / Catalog.FILENAME
        try:
            if not path.is_file() or path.resolve() == self.catalog.path.resolve():
                return 0, 0
            other = Catalog(path, readonly=True)
        except (OSError, LookalikeError) as exc:
            log.info("nothing adopted from %s: %s", folder, exc)
            return 0, 0
        try:
            empty = self.catalog.photo_count() == 0
            concepts = self.learner().concepts.adopt(other)  # user tags are concepts: carried with them
            if empty:
                self.learner().user_tags.adopt(other)  # and the automatic tags a user took off
            return concepts, self.people().adopt(other)
        finally:
            other.close()

    def answer(self, query: str | Query, *, k: int | None = None, folder: Path | str | None = None) -> Answer:
        """The ranked results with which of them match and how surely:
        :class:`lookalike.core.search.answer.Answer` (at least ``k`` results, the matches among
        the best :data:`lookalike.core.search.answer.CANDIDATES`)."""
        from lookalike.core.search.answer import answer_query

        return answer_query(self, self.parse(query) if isinstance(query, str) else query, k=k, folder=folder)

    def search(
        self,
        query: str | Query,
        *,
        k: int = 50,
        min_score: float | None = None,
        folder: Path | str | None = None,
        vector: np.ndarray | None = None,
    ) -> list[SearchResult]:
        """The ``k`` best photos for ``query`` (``vector``: the query's vector, when the caller
        has it already)."""
        if k <= 0:
            raise UsageError("the number of results (-k) must be at least 1")
        if self.catalog.photo_count() == 0 and self.library.model_record() is None:
            raise LookalikeError("The library is empty: add a folder of photos first.")
        q = self.parse(query) if isinstance(query, str) else query
        # Person terms (@name, @./face.jpg) choose photos; People resolves them.
        persons = self._persons(q)
        vec = vector if vector is not None else (self.embed(q) if q.has_vector_terms else None)
        vectors = self.vectors()
        allowed = None
        if folder is not None:
            folder = Path(folder).expanduser().resolve()
            allowed = self.catalog.ids_in_folder(folder)
            if allowed.size == 0:
                return []
        # Filters (year:, in:, tag:...) and #concepts choose photos; they never change a score.
        allowed = self._filtered(q, allowed)
        if allowed is not None and allowed.size == 0:
            return []
        if persons is not None:
            allowed = persons.narrow(allowed, self.catalog.all_ids)
            if allowed.size == 0:
                return []
        if vec is None and (persons is None or persons.allowed is None):  # nothing to rank by: newest first
            return self._browse_results(allowed, k)
        want = k
        results: list[SearchResult] = []
        # Over-fetch a little: rows may have vanished since the graph was saved.
        if vec is not None:
            hits = vectors.search(vec, min(len(vectors), want + 16), allowed=allowed)
        else:  # person terms alone rank the photos by their faces' likeness
            assert persons is not None and allowed is not None  # (narrowed above)
            hits = persons.hits(allowed, want + 16)
        ids, scores = hits.ids.tolist(), hits.scores.tolist()
        worded = self._word_hits(q, allowed, k)
        if worded:  # photos whose text holds the free text's words come first (docs/models.md)
            ids, scores = self._words_first(vec, worded, ids, scores)
        rows = self.catalog.photos_by_ids(ids)
        for pid, score in zip(ids, scores):
            row = rows.get(pid)
            if row is None:
                continue
            if min_score is not None and score < min_score and pid not in worded:
                break
            results.append(
                SearchResult(len(results) + 1, row.path, float(score), pid, row.width, row.height, row.taken, row.size)
            )
            if len(results) >= k:
                break
        return results

    def _word_hits(self, q, allowed, k: int) -> set[int]:
        """For a query of free text alone (``bakery``, ``luna bakery``): up to ``k`` photos
        (among ``allowed``) whose text read holds each term's words as whole words."""
        from lookalike.core.text import store

        terms = q.terms
        if not terms or any(t.kind != "text" or t.weight <= 0 for t in terms) or len(terms) > 4:
            return set()
        found: set[int] | None = None
        for term in terms:
            ids = store.whole_word_ids(self.catalog.query, term.value, limit=max(4 * k, 200))
            found = ids if found is None else found & ids
        if not found:
            return set()
        if allowed is not None:
            found &= set(np.asarray(allowed).tolist())
        return set(sorted(found)[: max(k, 1)])

    def _words_first(self, vec, worded: set[int], ids: list[int], scores: list[float]):
        """``worded`` photos first (by their likeness score), then the others in their order."""
        vectors = self.vectors()
        extra = sorted(worded - set(ids))
        if extra:
            more = vectors.search(vec, len(extra), allowed=np.asarray(extra, dtype=np.int64))
            ids, scores = ids + more.ids.tolist(), scores + more.scores.tolist()
        pairs = list(zip(ids, scores))
        first = sorted((p for p in pairs if p[0] in worded), key=lambda p: -p[1])
        rest = [p for p in pairs if p[0] not in worded]
        return [p[0] for p in first + rest], [p[1] for p in first + rest]

    # -- folders and indexing ------------------------------------------------

    @_writes("add a folder")
    def add_folder(self, path: Path | str) -> Folder:
        p = Path(path).expanduser()
        try:
            p = p.resolve(strict=True)
        except (FileNotFoundError, RuntimeError):
            raise LookalikeError(f"There is no folder at {p}") from None
        except OSError as exc:
            raise LookalikeError(f"Cannot reach {p}: {exc.strerror or exc}") from None
        if not p.is_dir():
            raise LookalikeError(f"{p} is a file, not a folder")
        if not os.access(p, os.R_OK | os.X_OK):
            raise LookalikeError(f"Cannot open the folder {p}: permission denied")
        for f in self.catalog.folders():
            if p.is_relative_to(f.path) and p != f.path:
                return f  # already covered by a parent folder
        row = self.catalog.add_folder(p)
        # A parent added after its children absorbs them.
        for f in self.catalog.folders():
            if f.id != row.id and f.path.is_relative_to(p):
                self.catalog.absorb_folder(f.id, row.id)
        return self.catalog.folder_by_path(p) or row

    @_writes("remove a folder")
    def remove_folder(self, path: Path | str) -> int:
        row = self.catalog.folder_by_path(Path(path).expanduser().resolve())
        if row is None:
            row = self.catalog.folder_by_path(Path(path).expanduser())
        if row is None:
            raise LookalikeError(f"{path} is not one of the library's folders")
        # Not in the middle of an indexing run (the window's, or the folder watcher's):
        # its next commit would insert photos of a folder that no longer exists.
        with self._index_lock:
            ids = self.catalog.ids_in_folder(row.path)
            n = self.catalog.remove_folder(row.id)
            if self._vectors is not None:
                self._vectors.delete(ids)
                self._vectors.generation = self.catalog.generation()
            self._save_graph()
        return n

    @_writes("follow a renamed folder")
    def move_folder(self, old: Path | str, new: Path | str) -> Folder:
        """Follow a library folder renamed or moved on disk: its photos keep their vectors."""
        with self._index_lock:
            row = self.catalog.folder_by_path(Path(old))
            if row is None:
                raise LookalikeError(f"{old} is not one of the library's folders")
            try:
                newp = Path(new).expanduser().resolve(strict=True)
            except (OSError, RuntimeError):
                raise LookalikeError(f"There is no folder at {new}") from None
            self.catalog.move_folder(row.id, newp)
            moved = self.catalog.folder_by_path(newp)
            assert moved is not None
            parent = next((f for f in self.catalog.folders() if f.id != moved.id and newp.is_relative_to(f.path)), None)
            if parent is not None:  # moved into another library folder: it joins it
                self.catalog.absorb_folder(moved.id, parent.id)
                moved = parent
            if self._vectors is not None:  # same ids, same vectors: the graph is still current
                self._vectors.generation = self.catalog.generation()
            self._save_graph()
            return self.catalog.folder_by_path(moved.path) or moved

    def folders(self) -> list[Folder]:
        return self.catalog.folders()

    @_writes("index")
    def index(
        self,
        roots: Sequence[Path | str] | None = None,
        *,
        excludes: Sequence[str] = (),
        progress: ProgressCallback = no_progress,
        cancel: CancelToken | None = None,
        batch_size: int | None = None,
        workers: int | None = None,
        on_commit: Callable[[], None] | None = None,
    ) -> IndexReport:
        """Add ``roots`` (if any) and bring those folders (or all) up to date.

        ``on_commit`` is called (on an indexing thread) after each batch is committed."""
        from lookalike.core.duplicates.fingerprint import FingerprintStage
        from lookalike.core.index.indexer import Indexer, IndexReport

        with self._index_lock:
            targets: list[Folder] = []
            if roots:
                for r in roots:
                    # A library folder that is not there now (a drive unplugged) is still
                    # reconciled: the indexer marks it offline and keeps its photos.
                    row = self.catalog.folder_by_path(Path(r).expanduser().absolute())
                    if row is None:
                        row = self.add_folder(r)
                    if row.id not in {t.id for t in targets}:
                        targets.append(row)
            else:
                targets = self.catalog.folders()
            if not targets:
                return IndexReport()
            if self._explicit_model:
                self.encoder(progress=progress, cancel=cancel)  # refuses a model the library was not built with
            vectors = self.vectors()  # the library's recorded dimension; a new one loads the model
            vectors.check()  # a re-scan reads the whole graph once: damage found here is rebuilt, and saved below
            vectors.verify(self.catalog)  # a photo the catalog holds and the graph lost is put back

            def encoder():  # called once the scan has found photos to encode, before the first
                # The graph is loaded into hnswlib now, so that a commit never waits for it while
                # encoders run ahead (a killed run loses no more than the batch in flight); a
                # re-scan that finds nothing new loads neither (the window runs one at every open).
                vectors.load()
                return self.encoder(progress=progress, cancel=cancel)

            indexer = Indexer(
                self.catalog,
                vectors,
                encoder,
                batch_size=batch_size,
                workers=workers,
                on_commit=on_commit,
                stages=(*self.people().stages(), FingerprintStage()),
            )
            try:
                report = indexer.run(targets, excludes=excludes, progress=progress, cancel=cancel)
            finally:
                vectors.generation = self.catalog.generation()
                self._save_graph()
                self.people().finish(progress)
            self.learner().update()  # tags and concepts for the photos just indexed
            if not report.cancelled:  # text follows, once the photos are searchable by likeness
                self._read_text(targets, vectors, excludes, progress, cancel, on_commit, batch_size)
            changed = report.added or report.updated or report.removed
            # (a re-scan that changed no vector keeps its ef: tuning loads the whole graph)
            if len(vectors) > 20_000 and changed:
                ef, recall = vectors.tune_ef(k=50)
                self.catalog.set_meta({"hnsw_ef": ef, "hnsw_recall_at_50": f"{recall:.4f}"})
                self._save_graph()
            return report

    def _read_text(self, targets, vectors, excludes, progress, cancel, on_commit, batch_size=None) -> int:
        """The text pass (:mod:`lookalike.core.text.stage`): photos not read yet are read,
        after the likeness indexing, committed every ``batch_size`` photos (4 by default:
        a photo with text takes seconds to read, so a kill loses little); returns how many
        were read."""
        from lookalike.core.index.indexer import Indexer
        from lookalike.core.text.stage import TextStage, text_enabled

        if not text_enabled():
            return 0
        stage = TextStage()
        try:
            indexer = Indexer(
                self.catalog,
                vectors,
                lambda: self.encoder(progress=progress, cancel=cancel),
                batch_size=batch_size or 4,
                on_commit=on_commit,
                stages=(stage,),
            )
            report = indexer.run(targets, excludes=excludes, progress=progress, cancel=cancel)
        finally:
            stage.close()
        if report.added or report.updated or report.removed:  # photos that came meanwhile
            vectors.generation = self.catalog.generation()
            self._save_graph()
        return report.refreshed

    def photo_text(self, path: Path | str) -> PhotoText | None:
        """What was read in the photo at ``path``: a :class:`lookalike.core.text.store.PhotoText`,
        or None when it has not been read yet. Raises :class:`LookalikeError` for a photo
        not in the library."""
        from lookalike.core.text import store

        row = self.catalog.photo_by_path(Path(path).expanduser().absolute())
        if row is None:
            raise LookalikeError(f"{path} is not in the library (index its folder first)")
        return store.text_of(self.catalog.query(store.TEXT_OF_SQL, (row.id,)))

    def text_matches(self, query: str | Query, photo_ids: Sequence[int]) -> dict[int, list[str]]:
        """For a query with ``text:`` filters: the lines of each photo's text that hold
        the words looked for (what a result shows), by photo id; {} for other queries."""
        from lookalike.core.search.model import FilterKey
        from lookalike.core.text import store

        q = self.parse(query) if isinstance(query, str) else query
        phrases = [f.value for f in q.filters_of(FilterKey.TEXT) if not f.exclude]
        out: dict[int, list[str]] = {}
        if not phrases:
            return out
        for pid in photo_ids:
            text = store.text_of(self.catalog.query(store.TEXT_OF_SQL, (int(pid),)))
            lines = store.matched_lines(text, phrases) if text is not None else []
            if lines:
                out[int(pid)] = lines
        return out

    # -- status -------------------------------------------------------------

    def status(self) -> LibraryStatus:
        record = self.library.model_record()
        from lookalike.core.encoders import available_encoders

        note = next((e.note for e in available_encoders() if e.name == self.model_name), "")
        return LibraryStatus(
            path=self.library.path,
            photos=self.catalog.photo_count(),
            folders=len(self.catalog.folders()),
            failures=self.catalog.failure_count(),
            model_id=record.encoder_id if record else "",
            model_name=self.model_name,
            dimension=record.dimension if record else 0,
            device=str(self._encoder.device) if self._encoder is not None else "",
            writer=self.library.writer,
            holder=self.library.holder(),
            note=note,
        )

    def data_version(self) -> int:
        """Changes when another process (the command line) has written the library; cheap."""
        return self.catalog.data_version()

    def failures(self) -> list[Failure]:
        return [Failure(f.path, f.reason) for f in self.catalog.failures()]

    def close(self) -> None:
        try:
            if (
                self.library.writer
                and self._vectors is not None
                and self._vectors.generation != self._saved_generation()
            ):
                self._save_graph()
        finally:
            if self._vectors is not None:
                self._vectors.close()
            if self._model_failed:  # a library made only to fail loading its model is not kept
                self.library.close_or_discard()
            else:
                self.library.close()
