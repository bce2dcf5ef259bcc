"""Symbolic links on a seized drive (issue 11, item 12): every path gets a record, nothing is hashed twice.

The folder is built here: links to files and folders inside the root, a two-link loop, a self link, a link to
an ancestor folder, a dangling link, and the root itself reached through a link.
"""

from __future__ import annotations

import os

from helpers import image_bytes, read_jsonl, synth_image

from tripwire.config import Config
from tripwire.media.walk import walk
from tripwire.pipeline.scan import run_scan
from tripwire.store.db import open_db


def _drive(tmp_path):
    root = tmp_path / "drive"
    (root / "photos").mkdir(parents=True)
    (root / "photos" / "a.jpg").write_bytes(image_bytes(synth_image(1), "JPEG"))
    (root / "b.jpg").write_bytes(image_bytes(synth_image(2), "JPEG"))
    (root / "copy.jpg").symlink_to(root / "photos" / "a.jpg")          # link to a file scanned anyway
    (root / "relative.jpg").symlink_to("photos/../b.jpg")               # relative, through ..
    (root / "album").symlink_to(root / "photos", target_is_directory=True)  # link to a folder inside
    (root / "loop-1").symlink_to(root / "loop-2")                        # a -> b -> a
    (root / "loop-2").symlink_to(root / "loop-1")
    (root / "self").symlink_to(root / "self")
    (root / "photos" / "up").symlink_to(root, target_is_directory=True)  # ancestor: following it never ends
    (root / "gone.jpg").symlink_to(root / "deleted.jpg")                 # dangling
    return root


def _codes(sources, root):
    return {os.path.relpath(s.path, root): (s.error.code if s.error else None, s.error.message if s.error else "")
            for s in sources}


def test_walk_records_every_link(tmp_path):
    root = _drive(tmp_path)
    found = _codes(list(walk([str(root)])), root)
    assert set(found) == {"b.jpg", "photos/a.jpg", "copy.jpg", "relative.jpg", "album", "loop-1", "loop-2", "self",
                          "photos/up", "gone.jpg"}
    assert found["photos/a.jpg"][0] is None and found["b.jpg"][0] is None
    assert found["copy.jpg"] == ("symlink_inside_root", f"symbolic link to {root / 'photos' / 'a.jpg'}: not followed, "
                                                        "the target is recorded under that path")
    assert found["relative.jpg"][0] == "symlink_inside_root" and str(root / "b.jpg") in found["relative.jpg"][1]
    assert found["album"][0] == "symlink_inside_root" and str(root / "photos") in found["album"][1]
    for loop in ("loop-1", "loop-2", "self", "photos/up"):
        assert found[loop][0] == "symlink_loop", loop
    assert found["gone.jpg"][0] == "unreadable" and "does not exist" in found["gone.jpg"][1]


def test_root_reached_through_a_link_names_targets_as_walked(tmp_path):
    root = _drive(tmp_path)
    alias = tmp_path / "mounted"
    alias.symlink_to(root, target_is_directory=True)
    found = _codes(list(walk([str(alias)])), alias)
    assert found["copy.jpg"][1].startswith(f"symbolic link to {alias / 'photos' / 'a.jpg'}:")


def test_a_loop_named_on_the_command_line_is_a_loop(tmp_path):
    (tmp_path / "x").symlink_to(tmp_path / "x")
    [source] = list(walk([str(tmp_path / "x")]))
    assert source.error is not None and source.error.code == "symlink_loop"


def test_scan_stores_link_records_and_hashes_each_file_once(tmp_path):
    root = _drive(tmp_path)
    db = open_db(str(tmp_path / "case.db"))
    run_scan([str(root)], db, "t", tmp_path / "out", Config(), workers=1, quiet=True)
    db.dispose()
    records = {os.path.relpath(r["path"], root): r for r in read_jsonl(tmp_path / "out" / "items.jsonl")}
    assert len(records) == 10
    hashed = [p for p, r in records.items() if r["sha256"]]
    assert sorted(hashed) == ["b.jpg", "photos/a.jpg"]
    assert records["copy.jpg"]["error"]["code"] == "symlink_inside_root"
    assert records["loop-1"]["error"]["code"] == "symlink_loop"
