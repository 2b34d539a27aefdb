"""The mapped rows made ready for the load: completed (defaults, derived fields, the source) and
deduplicated, either whole (:func:`prepare`) or a chunk at a time inside the locate/copy
pipeline (:class:`Stream`, for a CSV read by Arrow into a layer loaded the direct way).

Guarantees: a file mapped a chunk at a time loads as when it is mapped whole: the same rows,
the same duplicates (the last row of a 编号 that mapping did not reject wins), the same rejects
and warnings. The chunk size is :data:`etl.upsert.UPSERT_CHUNK`, read as
``upsert.UPSERT_CHUNK`` at run time (when a stream begins, when a frame is cut in chunks).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from etl import direct, upsert  # read as direct.ok, upsert.UPSERT_CHUNK when called: one setting reaches all
from etl.profile import Mapped, Profile, apply_profile, builtin, column_text, convert
from etl.readers import Unstreamable
from etl.rejects import no_rejects
from etl.targets import Target


def streams(raw, target: Target, profile: Profile) -> bool:  # noqa: ANN001 (RawTable)
    """Whether ``raw`` is mapped a chunk at a time inside the locate/copy pipeline
    (:class:`Stream`): a CSV read by Arrow, for a layer whose new rows are copied straight in
    and that has no checks of its own on the whole file (persons, the survey)."""
    return raw.text is not None and raw.geometry is None and in_chunks(target, profile)


def in_chunks(target: Target, profile: Profile) -> bool:
    """Whether ``target``'s rows may be mapped a chunk at a time (read from a CSV by Arrow)."""
    return direct.ok(target) and target.layer not in ("persons", "survey") and "source_id" in profile.columns


_READ_HERE = {"address", "source_id", "code", "normalized"}


class Stream:
    """A file mapped a chunk at a time (:data:`etl.upsert.UPSERT_CHUNK` rows) while the chunks
    before are located and copied (:func:`etl.direct.locate_and_load`), instead of mapped whole
    before the first COPY: the database works while Python maps. What needs the whole file is read from it
    before: the headers (the first chunk is mapped at once, so a file that matches no profile
    fails before its batch begins), and the 编号 of every row, typed as mapping types them: the
    rows whose 编号 the file holds more than once are held back until the end, where the last
    one that mapping did not reject wins, as when the file is mapped whole (:func:`_dedupe`);
    which keys the table knows, and bulk mode, are decided on all of them."""

    def __init__(self, raw, target: Target, profile: Profile, source: str, datum: str | None) -> None:  # noqa: ANN001
        self.raw, self.target, self.profile = raw, target, profile
        self.source, self.datum = source, datum
        self.size = upsert.UPSERT_CHUNK
        # text fields that only go to COPY stay Arrow text (no Python string per cell); those
        # read here (the address is geocoded, the 编号 keys and deduplicates, and becomes the
        # code) are Python strings as when the file is mapped whole
        self.as_read = {name for name, spec in profile.columns.items()
                        if spec.type == "string" and name in target.fields and name not in _READ_HERE}
        self.head = self._map(raw.slice(0, self.size), 0)  # raises for headers that match no profile
        self.rejects: list[pd.DataFrame] = [no_rejects()]
        self.missing_deadlines = 0
        ids = self._column("source_id")
        index = pd.RangeIndex(len(raw))
        self.keyed = pd.DataFrame({"source": source, "source_id": ids.to_numpy()}, index=index)
        self.ids = pd.factorize(ids, use_na_sentinel=False)[0]  # one number per distinct 编号
        self.repeated = np.bincount(self.ids)[self.ids] > 1
        # the gazetteer is read when some row may have only an address (a row whose 经度 then
        # fails mapping is a reject anyway: reading it for nothing costs little)
        self.addresses = False
        if "address" in profile.columns:
            xy = self._present("lon") & self._present("lat")
            self.addresses = bool((self._present("address") & ~xy).any())

    def _map(self, rows, lo: int) -> Mapped:  # noqa: ANN001 (RawTable)
        """``rows`` (the file's rows from ``lo``) mapped, indexed by their position in the file."""
        part = apply_profile(rows, self.profile, as_read=self.as_read)
        part.frame.index += lo  # positions in the whole file, as when it is mapped whole
        part.row_numbers.index += lo
        if self.datum:
            part.frame["datum"] = self.datum
        return part

    def _column(self, name: str) -> pd.Series:
        """One field over the whole file, typed as :func:`apply_profile` types it."""
        spec = self.profile.columns[name]
        return convert(column_text(self.raw, spec, self.head.matched.get(name)), spec)[0]

    def _present(self, name: str) -> np.ndarray:
        spec, header = self.profile.columns.get(name), self.head.matched.get(name)
        if spec is not None and spec.default is not None:
            return np.ones(len(self.raw), dtype=bool)
        if header is None:
            return np.zeros(len(self.raw), dtype=bool)
        return self.raw.column(header).notna().to_numpy(dtype=bool)

    def chunks(self):  # noqa: ANN201 (Iterator[Mapped])
        """The mapped chunks, completed (:func:`_fill`), without the rows held back; then those,
        deduplicated."""
        held: list[Mapped] = []
        for lo in range(0, len(self.raw), self.size):
            part = self._complete(self.head if lo == 0 else self._map(self.raw.slice(lo, self.size), lo))
            again = self.repeated[part.frame.index]
            if again.any():
                held.append(Mapped(part.frame[again], part.row_numbers[again], part.rejects.iloc[:0],
                                   part.matched))
                part = Mapped(part.frame[~again], part.row_numbers[~again], part.rejects.iloc[:0],
                              part.matched)
            yield part
        if held:
            last = Mapped(pd.concat([h.frame for h in held]), pd.concat([h.row_numbers for h in held]),
                          no_rejects(), self.head.matched)
            _dedupe(last)
            self.rejects.append(last.rejects)
            yield from chunked(last)

    def _complete(self, part: Mapped) -> Mapped:
        """A mapped chunk completed (:func:`_fill`), its rejects kept; the head emptied."""
        self.head = Mapped(part.frame.iloc[:0], part.row_numbers.iloc[:0], part.rejects.iloc[:0],
                           part.matched, part.warnings)
        self.rejects.append(part.rejects)
        self.missing_deadlines += _fill(part.frame, self.target, self.source)
        return part

    def warnings(self) -> list[str]:
        return [_deadline_warning(self.missing_deadlines)] if self.missing_deadlines else []


class ReadStream(Stream):
    """A file mapped a chunk at a time as it is read (:class:`etl.readers.CsvStream`), so that
    the first COPY begins after the first chunk, not after the whole file. What :class:`Stream`
    reads from the whole file before is not known here, so a stream is taken only where it
    cannot matter, and gives way (:class:`etl.readers.Unstreamable`, raised by :meth:`chunks`:
    the caller rolls the batch back and loads the file whole) where it would:

    - a 编号 that the file holds more than once (which :class:`Stream` holds back to the end):
      each chunk's 编号, typed as mapping types them, are checked against those before;
    - keys the table knows: the caller streams only a source's first load into the table;
    - bulk mode and the grids' raster are decided on ``reader.most`` (the file's lines) rows,
      which changes no result; the gazetteer is read if the first chunk needs it, else by the
      first chunk that does (:func:`etl.locate._late_gazetteer`)."""

    def __init__(self, reader, head, target: Target, profile: Profile, source: str,  # noqa: ANN001
                 datum: str | None) -> None:
        super().__init__(head, target, profile, source, datum)  # head: the reader's first RawTable
        self.raw, self.first = reader, head
        rows = pd.RangeIndex(reader.most)
        self.keyed = pd.DataFrame({"source": source, "source_id": None}, index=rows)  # all new
        self.ids = np.arange(reader.most)
        self.seen: set = set()

    def chunks(self):  # noqa: ANN201 (Iterator[Mapped])
        rows, lo = self.first, 0
        while rows is not None:
            self._check_keys(rows)
            part = self.head if lo == 0 else self._map(rows, lo)
            lo += len(rows)
            yield self._complete(part)
            rows = self.raw.next_chunk()

    def _check_keys(self, rows) -> None:  # noqa: ANN001 (RawTable)
        spec = self.profile.columns["source_id"]
        keys = convert(column_text(rows, spec, self.head.matched.get("source_id")), spec)[0]
        if spec.required:  # a row without 编号 is a reject: it holds nothing back
            keys = keys.dropna()
        keys = keys.astype(object).where(keys.notna(), _NO_KEY).tolist()
        distinct = set(keys)
        if len(distinct) < len(keys) or not self.seen.isdisjoint(distinct):
            raise Unstreamable("a 编号 more than once in the file")
        self.seen |= distinct


_NO_KEY = object()  # rows without 编号, where a profile does not require it, share one key


def chunked(mapped: Mapped):  # noqa: ANN202 (Iterator[Mapped])
    """``mapped`` in chunks of :data:`etl.upsert.UPSERT_CHUNK` rows."""
    f, rows = mapped.frame, mapped.row_numbers
    for lo in range(0, len(f), upsert.UPSERT_CHUNK):
        hi = lo + upsert.UPSERT_CHUNK
        yield Mapped(f.iloc[lo:hi], rows.iloc[lo:hi], mapped.rejects.iloc[:0], mapped.matched)


def prepare(mapped: Mapped, target: Target, source: str) -> None:
    missing = _fill(mapped.frame, target, source)
    if missing:
        mapped.warnings.append(_deadline_warning(missing))
    _dedupe(mapped)


def _fill(f: pd.DataFrame, target: Target, source: str) -> int:
    """Complete the mapped rows ``f`` in place: defaults, derived fields, the source. Returns
    how many cases had no deadline (set to 受理时间 + 30 days)."""
    # fields a custom profile does not map take the built-in profile's default, or stay empty
    base = builtin(target.layer).columns
    for name in target.fields:
        if name not in f and name != "code":
            spec = base.get(name)
            if spec is not None and spec.default is not None:
                f[name], _ = convert(pd.Series(spec.default, index=f.index, dtype=object), spec)
            else:
                f[name] = None
    if "code" in target.fields and "code" not in f:
        f["code"] = f["source_id"]
    if "normalized" in target.fields:
        # the matching key of standard addresses (gis.address.normalize, without the region:
        # the gazetteer strips a province/city/county prefix itself)
        from gis.address import normalize

        f["normalized"] = [normalize(a) if isinstance(a, str) else None for a in f["address"]]
    missing = 0
    if target.layer == "cases" and "deadline" in f:
        # 人民调解法: a mediation is to finish within 30 days unless agreed otherwise.
        gap = f["deadline"].isna() & f["accepted_at"].notna()
        missing = int(gap.sum())
        if missing:
            f.loc[gap, "deadline"] = f.loc[gap, "accepted_at"] + pd.Timedelta(days=30)
    f["source"] = source
    return missing


def _deadline_warning(n: int) -> str:
    return f"{n} rows had no 办理期限: set to 受理时间 + 30 days"


def _dedupe(mapped: Mapped) -> None:
    """The same record twice in one file: the last row wins, the earlier ones are rejects."""
    f = mapped.frame
    dup = f.duplicated("source_id", keep="last")
    if dup.any():
        extra = pd.DataFrame(
            {
                "row_number": mapped.row_numbers[dup].to_numpy(),
                "column_name": "source_id",
                "reason": "duplicate 编号 in this file; a later row with the same 编号 was loaded",
                "raw": [{"source_id": v} for v in f.loc[dup, "source_id"]],
            }
        )
        mapped.rejects = pd.concat([mapped.rejects, extra], ignore_index=True)
        mapped.frame, mapped.row_numbers = f[~dup], mapped.row_numbers[~dup]
