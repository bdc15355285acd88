"""Privacy and safety: a private library, no network, no shell, no eval, bounded queries."""

from __future__ import annotations

import ast
import os
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lookalike.core.engine import SearchEngine
from lookalike.core.errors import LookalikeError, QueryError
from tests.hostile import good_image, jpeg_bytes

REPO = Path(__file__).resolve().parents[2]
PACKAGE = REPO / "desktop" / "lookalike"


def write_photos(folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i, name in enumerate(names):
        p = folder / name
        p.write_bytes(jpeg_bytes(good_image(i, 96)))
        out.append(p)
    return out


def mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


def test_the_library_folder_is_private(tmp_path, tiny_clip_checkpoint):
    photos = tmp_path / "photos"
    write_photos(photos, ["a.jpg", "b.jpg"])
    os.umask(0o022)  # the usual umask: new folders would be world-readable
    # The default library (under LOOKALIKE_HOME), made by the command line ...
    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))
    r = subprocess.run(
        [sys.executable, "-m", "lookalike", "index", str(photos), "--model-file", str(tiny_clip_checkpoint), "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    # ... and one named by the caller, parents included.
    named = tmp_path / "elsewhere" / "my library"
    with SearchEngine.open(named, model_file=tiny_clip_checkpoint, writer=True, create=True) as eng:
        eng.index([photos])
    from lookalike.core.store.paths import app_paths

    for lib in (app_paths().default_library, named):
        assert mode(lib) == 0o700, (lib, oct(mode(lib)))
        assert {f.name for f in lib.iterdir()} >= {"catalog.sqlite3", "vectors.hnsw"}
    # A library someone made world-readable is made private again when opened.
    os.chmod(named, 0o755)
    SearchEngine.open(named, writer=False).close()
    assert mode(named) == 0o700


# Runs a command of the CLI with every attempt to reach the network refused and recorded
# (a Python audit hook sees every socket connect, DNS lookup and URL open, whoever makes it).
_NO_NETWORK = r"""
import socket, sys
attempts = []
def hook(event, args):
    if event in ("socket.connect", "socket.connect_ex", "socket.getaddrinfo", "socket.gethostbyname",
                 "socket.gethostbyaddr", "socket.sendto", "urllib.Request", "http.client.connect"):
        attempts.append(event)
        sys.stderr.write(f"NETWORK ATTEMPT {event} {args!r}\n")
        raise OSError(f"network blocked by the test ({event})")
    if event == "socket.__new__" and len(args) > 1 and args[1] in (socket.AF_INET, socket.AF_INET6):
        attempts.append(event)
        sys.stderr.write(f"NETWORK ATTEMPT {event}\n")
        raise OSError("network blocked by the test (socket)")
sys.addaudithook(hook)
from lookalike.cli import main
commands, cmd = [], []
for a in sys.argv[1:] + ["::"]:  # several commands in one process, separated by "::"
    if a == "::":
        commands.append(cmd)
        cmd = []
    else:
        cmd.append(a)
for cmd in commands:
    print(f"=== {cmd[0]}", flush=True)
    code = main(cmd)
    if code:
        sys.exit(code)
sys.exit(3 if attempts else 0)
"""


def _offline_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):  # what a user has: no such switches set
        env.pop(k, None)
    return subprocess.run(
        [sys.executable, "-c", _NO_NETWORK, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_index_and_search_with_the_network_blocked(tmp_path):
    """The default (offline) model: index, search, status, models - not one socket opened."""
    from tests.photos import write_samples

    photos = tmp_path / "photos"
    write_samples(photos, ["cat", "coffee", "rocket"])
    lib = tmp_path / "library"
    r = _offline_cli(
        "index",
        str(photos),
        "--library",
        str(lib),
        "-q",
        "::",
        "search",
        "a cup of coffee",
        "--library",
        str(lib),
        "-k",
        "1",
        "::",
        "search",
        str(photos / "cat.jpg") + " - a cat + a rocket",
        "--library",
        str(lib),
        "::",
        "status",
        "--library",
        str(lib),
        "::",
        "models",
        cwd=tmp_path,
    )
    assert r.returncode == 0 and "NETWORK ATTEMPT" not in r.stderr, r.stderr
    first_search = r.stdout.split("=== search")[1]
    assert "coffee.jpg" in first_search


def test_a_clip_checkpoint_file_is_used_with_the_network_blocked(tmp_path, tiny_clip_checkpoint):
    photos = tmp_path / "photos"
    write_photos(photos, ["a.jpg", "b.jpg", "c.jpg"])
    lib = tmp_path / "library"
    r = _offline_cli(
        "index",
        str(photos),
        "--library",
        str(lib),
        "--model-file",
        str(tiny_clip_checkpoint),
        "-q",
        "::",
        "search",
        "a dog + " + str(photos / "a.jpg"),
        "--library",
        str(lib),
        cwd=tmp_path,
    )
    assert r.returncode == 0 and "NETWORK ATTEMPT" not in r.stderr, r.stderr
    assert str(photos / "a.jpg") in r.stdout


# -- no shell, no eval ---------------------------------------------------------------


def _modules():
    for path in sorted(PACKAGE.rglob("*.py")):
        yield path, ast.parse(path.read_text(encoding="utf-8"), filename=str(path))


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return _dotted(node.value) + "." + node.attr
    return ""


def test_no_shell_and_no_code_evaluation_anywhere_in_the_app():
    problems = []
    for path, tree in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                name = _dotted(node.func)
                if name in (
                    "eval",
                    "exec",
                    "compile",
                    "os.system",
                    "os.popen",
                    "os.execvp",
                    "os.spawnlp",
                    "pty.spawn",
                    "asyncio.create_subprocess_shell",
                    "webbrowser.open",
                    "QProcess.startCommand",
                ):
                    problems.append(f"{rel}:{node.lineno} calls {name}")
                for kw in node.keywords:
                    if kw.arg == "shell" and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                        problems.append(f"{rel}:{node.lineno} passes shell={ast.unparse(kw.value)}")
                if (
                    name.endswith(
                        (
                            "subprocess.run",
                            "subprocess.Popen",
                            "subprocess.call",
                            "subprocess.check_call",
                            "subprocess.check_output",
                            "startDetached",
                        )
                    )
                    and node.args
                    and isinstance(node.args[0], (ast.Constant, ast.JoinedStr))
                    and not name.endswith("startDetached")
                ):
                    problems.append(f"{rel}:{node.lineno} runs a command given as one string")
            if isinstance(node, (ast.Import, ast.ImportFrom)) and not rel.startswith("bench/"):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                if "subprocess" in names:
                    problems.append(f"{rel}:{node.lineno} imports subprocess (only the benchmarks may)")
    assert problems == []


def test_files_open_through_the_desktops_own_opener():
    src = (PACKAGE / "gui" / "desktop.py").read_text()
    tree = ast.parse(src)
    opener = next(n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name == "open_with_default_app")
    calls = {_dotted(n.func) for n in ast.walk(opener) if isinstance(n, ast.Call)}
    assert "QDesktopServices.openUrl" in calls and "QUrl.fromLocalFile" in calls
    # Nothing else in the window starts programs except through QProcess with an argument list.
    for path, tree in _modules():
        if "/gui/" not in path.as_posix() and path.name != "app.py":
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _dotted(node.func).endswith("startDetached"):
                assert len(node.args) == 2 and isinstance(node.args[1], (ast.List, ast.Name)), (
                    f"{path.name}:{node.lineno}"
                )


def test_hostile_file_names_never_reach_a_shell(tmp_path, tiny_clip_checkpoint, monkeypatch):
    names = [
        "$(touch PWNED1).jpg",
        "`touch PWNED2`.jpg",
        "; touch PWNED3 #.jpg",
        "a' ; touch PWNED4 '.jpg",
        "-rf.jpg",
        "|touch PWNED5.jpg",
    ]
    photos = tmp_path / "photos"
    paths = write_photos(photos, names)
    lib = tmp_path / "library"
    monkeypatch.chdir(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "lookalike",
            "index",
            str(photos),
            "--library",
            str(lib),
            "--model-file",
            str(tiny_clip_checkpoint),
            "-q",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr
    with SearchEngine.open(lib, writer=False) as eng:
        for p in paths:
            assert eng.search(f'"{p}"', k=1)[0].path == p
    from lookalike.cli import main

    assert main(["search", f'"{paths[0]}"', "--library", str(lib), "--json"]) == 0
    assert main(["status", "--errors", "--library", str(lib)]) == 0
    assert [p for p in tmp_path.rglob("PWNED*")] == []


@pytest.mark.parametrize(
    "query",
    [
        "__import__('os').system('touch PWNED')",
        "eval('1+1')",
        "exec(\"open('PWNED','w')\")",
        "{{7*7}} ${7*7} #{7*7}",
        "lambda: 0",
        "1e308*1e308*dog",
    ],
)
def test_the_query_language_never_evaluates_code(tmp_path, monkeypatch, query):
    from lookalike.core.search.parse import parse

    monkeypatch.chdir(tmp_path)
    try:
        q = parse(query)
    except QueryError as exc:  # refusing is fine; running it is not
        assert exc.reason
    else:
        assert all(t.kind == "text" for t in q.terms)
        assert any(query.strip()[:6] in t.value or t.value in query for t in q.terms)
    assert list(tmp_path.iterdir()) == []
    src = "\n".join((PACKAGE / "core" / "search" / f"{name}.py").read_text() for name in ("model", "parse", "embed"))
    calls = {_dotted(n.func) for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Call)}
    assert not calls & {"eval", "exec", "compile", "__import__", "importlib.import_module", "getattr"}


# -- absurd queries ------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_engine(tmp_path_factory, tiny_clip_checkpoint):
    root = tmp_path_factory.mktemp("absurd")
    photos = write_photos(root / "photos", [f"p{i}.jpg" for i in range(5)])
    eng = SearchEngine.open(root / "library", model_file=tiny_clip_checkpoint, writer=True, create=True)
    eng.index([root / "photos"])
    yield eng, photos, root
    eng.close()


ABSURD = {
    "10 MB of text": lambda: "dog " * 2_500_000,
    "100,000 nested parentheses": lambda: "(" * 100_000 + "dog" + ")" * 100_000,
    "5,000 terms": lambda: " + ".join(f"word{i}" for i in range(5000)),
    "65 terms": lambda: " + ".join(f"w{i}" for i in range(65)),
    "9,000 signs": lambda: "dog " + "- " * 4500 + "cat",
    "2,000 weights": lambda: "2*" * 2000 + "dog",
    "an unterminated quote of 9,999 chars": lambda: '"' + "x" * 9998,
    "a weight of 1e400": lambda: "1e400*dog",
    "only signs": lambda: "+ - + -",
    "NUL bytes and control characters": lambda: "dog\x00\x01\x1b[2J cat\r\n",
}


@pytest.mark.parametrize("kind", list(ABSURD))
def test_absurd_queries_get_a_clear_error(small_engine, kind):
    eng, _, _ = small_engine
    query = ABSURD[kind]()
    t0 = time.perf_counter()
    try:
        results = eng.search(query, k=10)
    except QueryError as exc:
        took = time.perf_counter() - t0
        assert exc.reason and 0 <= exc.column <= len(query)
        assert len(str(exc)) < 300  # the message does not echo the query back
    else:
        took = time.perf_counter() - t0
        assert kind == "NUL bytes and control characters" and len(results) <= 10
    print(f"\nFIGURE absurd query ({kind}): answered in {took * 1000:.1f} ms")


def test_absurd_query_photos_are_refused_clearly(small_engine, tmp_path):
    eng, photos, _ = small_engine
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    sparse = tmp_path / "huge.jpg"
    with open(sparse, "wb") as fh:
        fh.truncate(2**30)
    for target, words in (
        (fifo, "not a file"),
        ("/dev/zero", "not a file"),
        (sparse, "too large"),
        (tmp_path, "not a file"),
    ):
        t0 = time.perf_counter()
        with pytest.raises(LookalikeError) as err:
            eng.search(f'"{target}"', k=5)
        took = time.perf_counter() - t0
        assert words in str(err.value), str(err.value)
        print(f"\nFIGURE query photo {target}: refused in {took * 1000:.1f} ms")
    # An absurd number of results is just "all of them".
    assert len(eng.search(str(photos[0]), k=10**12)) == 5
    with pytest.raises(LookalikeError):
        eng.search(str(photos[0]), k=0)


def test_the_cli_refuses_a_huge_query_clearly(small_engine):
    _, _, root = small_engine
    env = dict(os.environ, PYTHONPATH=str(REPO / "desktop"))
    query = " + ".join(f"w{i}" for i in range(20_000))[:120_000]
    t0 = time.monotonic()
    r = subprocess.run(
        [sys.executable, "-m", "lookalike", "search", query, "--library", str(root / "library")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    took = time.monotonic() - t0
    assert r.returncode == 2, r.stderr[-500:]
    assert r.stderr.startswith("lookalike: bad query: query is longer than") and "Traceback" not in r.stderr
    print(
        f"\nFIGURE CLI refused a 120 KB query in {took:.2f} s (interpreter start included), "
        f"{len(r.stderr)} bytes of message"
    )
