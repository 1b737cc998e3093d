"""``xae explore --static DIR`` never loses a user's files: it refuses a run, a folder above a
run or above the current folder, a file, and a folder of other files, with one line and exit
status 2, and it replaces only an earlier static export (it carries ``.xae-static``), whole."""
from __future__ import annotations

import json
import shutil

import pytest

from xae.cli import main
from xae.errors import XaeError
from xae.explore import runtime, write_static
from xae.explore.site import MARKER
from conftest import run_xae


def _snapshot(folder):
    """Every file and folder under ``folder``, with the bytes of each file."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() and not p.is_symlink()
            else str(p.readlink()) if p.is_symlink() else None for p in sorted(folder.rglob("*"))}


def _mark(folder):
    (folder / MARKER).write_text(json.dumps({"format": "xae-static", "version": 1}))


@pytest.fixture
def project(explore_runs, tmp_path):
    """tmp/proj holding a copy of a run and a user's files; tmp/file, tmp/notes."""
    proj = tmp_path / "proj"
    shutil.copytree(explore_runs["vae"], proj / "vae")
    (proj / "README.md").write_text("my project\n")
    (proj / "empty").mkdir()
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "todo.txt").write_bytes(b"\x00keep me\xff")
    (tmp_path / "notes" / "sub").mkdir()
    (tmp_path / "notes" / "sub" / "data.csv").write_text("a,b\n1,2\n")
    (tmp_path / "file").write_text("not a folder\n")
    (tmp_path / "link").symlink_to(tmp_path / "notes", target_is_directory=True)
    return proj


@pytest.mark.parametrize("target,cwd,marked,words", [
    ("proj/vae", ".", None, "is the run"),  # the run itself
    ("proj/vae", ".", "proj/vae", "is the run"),  # even with a marker planted in it
    ("vae", "proj", None, "is the run"),
    ("proj", ".", "proj", "or a folder above it"),  # above a run, marker or not
    ("proj/vae/..", ".", "proj", "or a folder above it"),
    (".", "proj", None, "the current folder or one above it"),
    ("..", "proj/empty", None, "the current folder or one above it"),
    (".", "proj/empty", None, "the current folder or one above it"),  # even when empty
    ("notes", ".", None, f"no {MARKER}"),  # a user's files
    ("notes/sub", ".", None, f"no {MARKER}"),
    ("file", ".", None, "is not a folder"),
    ("link", ".", None, "is a symbolic link"),  # it would replace the link, not what it names
])
def test_static_refuses_folders_it_would_lose_files_of(project, monkeypatch, capsys, target,
                                                       cwd, marked, words):
    tmp = project.parent
    if marked:
        _mark(tmp / marked)
    before = _snapshot(tmp)
    monkeypatch.chdir(tmp / cwd)
    run = tmp / "proj" / "vae"
    assert main(["explore", str(run), "--static", target]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("xae: error: --static") and len(err.splitlines()) == 1, err
    assert words in err and "Traceback" not in err, err
    assert _snapshot(tmp) == before  # every byte still there, nothing half-written


def test_the_cli_exits_2_with_one_line_and_leaves_the_run_whole(project):
    before = _snapshot(project)
    for target in ("vae", "."):
        p = run_xae("explore", "vae", "--static", target, cwd=project, timeout=120)
        assert p.returncode == 2 and p.stdout == "", p
        assert p.stderr.startswith("xae: error: --static") and p.stderr.count("\n") == 1, p.stderr
    assert _snapshot(project) == before


def test_static_writes_a_marked_folder_and_replaces_only_that_whole(explore_views, tmp_path):
    if runtime.ort_dir() is None:
        pytest.fail(f"onnxruntime-web is missing: {runtime.HOW}")
    site = tmp_path / "site"
    site.mkdir()  # an empty folder is fine
    assert write_static(explore_views[:1], site) == site.resolve()
    assert json.loads((site / MARKER).read_text())["format"] == "xae-static"
    first = _snapshot(site)
    (site / "stale.txt").write_text("from an older export\n")
    write_static(explore_views[:2], site)  # re-export: replaced whole
    after = _snapshot(site)
    assert "stale.txt" not in after and "run/1/decoder.onnx" in after and MARKER in after
    assert after["index.html"] == first["index.html"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]  # no temporary folder left

    user = tmp_path / "user"
    user.mkdir()
    (user / "thesis.tex").write_text("\\section{results}\n")
    with pytest.raises(XaeError, match=MARKER):
        write_static(explore_views[:1], user)
    assert _snapshot(user) == {"thesis.tex": b"\\section{results}\n"}
