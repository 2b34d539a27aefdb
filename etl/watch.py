"""A drop folder for the daily exports towns send (`pingan etl watch DIR`).

Layout: one sub-folder per layer, ``DIR/hazards/``, ``DIR/cases/``, ``DIR/key_sites/``, ...
(``DIR/persons/`` only when a data key ring is given: persons are sealed with it). A file
dropped there is loaded once its size has stopped changing (a copy in progress is not read half
way), then moved to ``DIR/<layer>/done/`` or ``DIR/<layer>/failed/`` with a ``.log`` beside it
saying what happened. Files are taken oldest first, so a day's export never overtakes the day
before it. The source of each batch is ``--source`` or the file name's prefix before the first
``_`` (``jingshan_20250301.xlsx`` → ``jingshan``), so each town keeps its own key space.

A Shapefile is its ``.shp`` with the files of the same name beside it (``.dbf``, ``.shx``,
``.prj``, ``.cpg``, ...): they settle, load and move together. The watch never stops on one file:
a database that cannot be reached (or a disk error) leaves the file where it is for the next
sweep; a file that breaks the loader any other way is filed under failed/ with the error.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.exc import InterfaceError, OperationalError

from etl.pipeline import BatchResult, load_file
from etl.readers import SPATIAL_SUFFIXES, TABLE_SUFFIXES
from etl.targets import TARGETS
from layers.crypto import KeyRing

SUFFIXES = SPATIAL_SUFFIXES | TABLE_SUFFIXES


@dataclass
class Dropped:
    path: Path
    layer: str
    size: int
    seen_at: float


def source_of(path: Path, default: str | None) -> str:
    if default:
        return default
    stem = path.stem.split("_", 1)[0].strip()
    return stem or "import"


def layers(keys: KeyRing | None) -> list[str]:
    return [layer for layer in TARGETS if layer != "persons" or keys is not None]


def pending(root: Path, keys: KeyRing | None = None) -> list[tuple[Path, str]]:
    """Files waiting in the layer folders, oldest first (a file gone since the listing: skipped)."""
    found = []
    for layer in layers(keys):
        folder = root / layer
        if folder.is_dir():
            for p in folder.iterdir():
                if p.suffix.lower() in SUFFIXES and p.is_file():
                    try:
                        found.append((p.stat().st_mtime, p.name, p, layer))
                    except FileNotFoundError:
                        continue
    return [(p, layer) for _, _, p, layer in sorted(found)]


def parts(path: Path) -> list[Path]:
    """The files that make up the dropped ``path``: a Shapefile's ``.shp`` and the files of the
    same name beside it; anything else alone."""
    if path.suffix.lower() != ".shp":
        return [path]
    stem = path.stem.lower() + "."  # x.dbf, x.prj, and x.shp.xml (ArcGIS's metadata) too
    return [path] + sorted(p for p in path.parent.iterdir()
                           if p != path and p.is_file() and p.name.lower().startswith(stem))


def _tail(part: Path, path: Path) -> str:
    """What follows the dropped file's stem in a part's name: ``.dbf``, ``.shp.xml``."""
    return part.name[len(path.stem):]


def settle(path: Path, wait: float) -> bool:
    """True when the sizes of the file's parts did not change over ``wait`` seconds."""
    try:
        before = [(p, p.stat().st_size) for p in parts(path)]
        time.sleep(wait)
        return path.exists() and before == [(p, p.stat().st_size) for p in parts(path)]
    except FileNotFoundError:
        return False


def file_away(path: Path, result: BatchResult) -> Path:
    """Move ``path`` to done/ or failed/ (never overwriting) and write its log beside it."""
    dest_dir = path.parent / ("done" if result.status == "done" else "failed")
    dest_dir.mkdir(exist_ok=True)
    moving = parts(path)
    dest, n = dest_dir / path.name, 1
    while any((dest_dir / f"{dest.stem}{_tail(p, path)}").exists() for p in moving):
        dest = dest_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    for p in moving:  # a Shapefile's parts keep one name
        shutil.move(str(p), dest_dir / f"{dest.stem}{_tail(p, path)}")
    log = [f"batch {result.batch_id}: {result.status}"]
    if result.error:
        log.append(f"error: {result.error}")
    log.append(
        f"read {result.read}, loaded {result.loaded}, updated {result.updated}, "
        f"unchanged {result.unchanged}, rejected {result.rejected}"
    )
    log += [f"rejected {n}: {reason}" for reason, n in result.reasons.items()]
    log += [f"note: {w}" for w in result.warnings]
    dest.with_name(dest.name + ".log").write_text("\n".join(log) + "\n", encoding="utf-8")
    return dest


def watch(
    engine: Engine,
    root: Path,
    *,
    source: str | None = None,
    interval: float = 5.0,
    settle_seconds: float = 2.0,
    once: bool = False,
    report: Callable[[Path, BatchResult], None] | None = None,
    keys: KeyRing | None = None,
) -> int:
    """Load files as they arrive; return how many were handled (``once``: one sweep, then stop)."""
    for layer in layers(keys):
        (root / layer).mkdir(parents=True, exist_ok=True)
    handled = 0
    while True:
        for path, layer in pending(root, keys):
            if not settle(path, settle_seconds):
                continue  # still being written: next sweep
            try:
                result = load_file(engine, path, layer, source=source_of(path, source), keys=keys)
            except (OperationalError, InterfaceError, OSError) as exc:
                # the database or the disk, not the file: it stays for the next sweep
                if report:
                    report(path, BatchResult(0, "waiting", error=f"not loaded, tried next sweep: {exc}"))
                continue
            except Exception as exc:  # noqa: BLE001 - a file that breaks the loader: filed, the watch goes on
                result = BatchResult(0, "failed", error=f"the loader failed: {type(exc).__name__}: {exc}")
            # taken away while it loaded: its batch is recorded, nothing is left to move
            with contextlib.suppress(FileNotFoundError):
                file_away(path, result)
            handled += 1
            if report:
                report(path, result)
        if once:
            return handled
        time.sleep(interval)
