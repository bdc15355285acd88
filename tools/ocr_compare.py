"""RapidOCR against Tesseract on the bench's labelled text photos (how the engine was chosen).

    python -m tools.ocr_compare rapid|tesseract [SHORT_SIDE]

Builds bench/textset.py's set in a temporary folder, reads each photo (EXIF-turned,
short side at most SHORT_SIDE, default 1600) and prints the share of the known words
found as words of the text read (word recall), as substrings of its letters and digits
alone (substring recall), and the CPU milliseconds a photo (medians; process CPU time
plus the tesseract child's). Tesseract runs as Debian's `tesseract` 5 command with
`--psm 11 -l eng` (sparse text: photos, not pages), one thread (OMP_THREAD_LIMIT=1).
"""

from __future__ import annotations

import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps


def main(argv: list[str]) -> int:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "desktop"))
    from lookalike.bench import textset

    engine = argv[0] if argv else "rapid"
    limit = int(argv[1]) if len(argv) > 1 else 1600
    folder = Path(tempfile.mkdtemp(prefix="ocr-compare-"))
    labels = textset.build(folder)
    if engine == "rapid":
        from rapidocr_onnxruntime import RapidOCR

        eng = RapidOCR()

        def read(im: Image.Image) -> str:
            res, _ = eng(np.asarray(im)[:, :, ::-1])
            return " ".join(r[1] for r in (res or []))
    else:
        os.environ["OMP_THREAD_LIMIT"] = "1"

        def read(im: Image.Image) -> str:
            with tempfile.NamedTemporaryFile(suffix=".png") as f:
                im.save(f.name)
                cmd = ["tesseract", f.name, "-", "--psm", "11", "-l", "eng"]
                return subprocess.run(cmd, capture_output=True, text=True, check=False).stdout

    found = glued = total = 0
    cpu: dict[str, list[float]] = {"text": [], "none": []}
    for name, words in sorted(labels.words.items()):
        im = ImageOps.exif_transpose(Image.open(folder / name)).convert("RGB")
        s = limit / min(im.size)
        if s < 1:
            im = im.resize((round(im.width * s), round(im.height * s)), Image.Resampling.BILINEAR)
        t0, c0 = time.process_time(), resource.getrusage(resource.RUSAGE_CHILDREN)
        text = read(im)
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu["text" if words else "none"].append(
            1000 * (time.process_time() - t0 + c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime)
        )
        tokens = set(re.findall(r"\w+", text.lower()))
        letters = re.sub(r"\W", "", text.lower())
        found += sum(w in tokens for w in words)
        glued += sum(w in letters for w in words)
        total += len(words)
    print(
        f"{engine} (short side {limit}): word recall {found / total:.3f}, substring recall {glued / total:.3f}; "
        f"CPU ms a photo with text {statistics.median(cpu['text']):.0f}, without {statistics.median(cpu['none']):.0f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
