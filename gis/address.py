"""Parse Chinese addresses and place them offline against a district gazetteer.

The :class:`Gazetteer` is the authority: towns (镇街) and villages (村社) are recognised only by
the names it holds, with their usual variants ('梧田' for '梧田街道'; '白象村委会' or '白象' for
'白象村'; '东瓯社区居委会' for '东瓯社区'), and doors are placed only on its standard addresses
(标准地址). :func:`geocode` never guesses: an address that names a place outside the district,
contradicts itself, or names an ambiguous village without its town stays unplaced, with a reason.

=======  ===============  ===========================================================================
level    score            when
=======  ===============  ===========================================================================
door     1.0              the normalised address, or road + number in the named village (else town),
                          is a standard address
door     0.9              road + number is a standard address unique in the district, and the address
                          names the district but no town or village
door     0.9 - 0.01 * gap fuzzy: same road in the named village (else town), the number is not there,
                          and the nearest number on the same side (same parity) is ``gap <= 10`` away;
                          the point is that door's
village  0.7              the village's representative point
town     0.4              the town's representative point
=======  ===============  ===========================================================================

Only the village (or, without one, the town) the address names is searched for its door: a
standard address of the same road and number in a neighbouring village is not taken. "Same
side" is same parity because Chinese roads number odd doors on one side and even on the other.
A standard address held by two different points is no door for that key (never a guess).
"""

from __future__ import annotations

import re
import string
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pandas as pd

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]

SCORE_DOOR, SCORE_DOOR_DISTRICT, SCORE_VILLAGE, SCORE_TOWN = 1.0, 0.9, 0.7, 0.4
FUZZY_SCORE, FUZZY_STEP, FUZZY_MAX_GAP = 0.9, 0.01, 10
NO_PLACE = "no town or village of the district found in address"

# --------------------------------------------------------------------------------------------
# Normalisation: one str.translate pass, then Chinese numerals before door-number words.

_DROP = (" \t\r\n\v\f\u3000\xa0!\"$%&'()*+,./:;<=>?@[\\]^_`{|}~"
         "，。、；：？！“”‘’（）【】《》〈〉「」『』〔〕…·～￥")
_REPLACE = {"#": "号", "號": "号", "區": "区", "縣": "县", "鎮": "镇", "鄉": "乡", "樓": "楼",
            "棟": "栋", "單": "单", "門": "门", "—": "-", "–": "-", "―": "-"}


def _char_rule(ch: str) -> str | None:
    if ch in _DROP:
        return None
    return _REPLACE.get(ch, ch.upper() if ch in string.ascii_lowercase else ch)


# Full-width forms are folded to ASCII first and then take the ASCII rule, in the same pass.
_TABLE = {cp: _char_rule(chr(cp - 0xFEE0)) for cp in range(0xFF01, 0xFF5F)} | {
    ord(ch): _char_rule(ch) for ch in _DROP + "".join(_REPLACE) + string.ascii_lowercase}
# str.translate probes a dict for every character; most addresses need no change at all.
_NEEDS_TABLE = re.compile("[" + re.escape("".join(map(chr, _TABLE))) + "]")
# Only numerals right before a door-number word are numbers: '三垟街道', '十里河社区' and
# '白象一巷' are names and stay as they are.
_CN_NUMBER = re.compile(r"[〇零一二两三四五六七八九十百千]+(?=号|弄|幢|栋|单元|室|楼|层|座)")
_CN_DIGIT = {c: i for i, c in enumerate("零一二三四五六七八九")} | {"〇": 0, "两": 2}
_CN_UNIT = {"十": 10, "百": 100, "千": 1000}


def _cn_int(word: str) -> int | None:
    """'十二' -> 12, '二百零五' -> 205, '一二三' -> 123 (read digit by digit); None if malformed."""
    if all(c in _CN_DIGIT for c in word):
        return int("".join(str(_CN_DIGIT[c]) for c in word))
    total, digit, last_unit = 0, None, 10_000
    for c in word:
        if c in _CN_DIGIT:
            if digit:  # two digits in a row without a unit between them
                return None
            digit = _CN_DIGIT[c]
        else:
            unit = _CN_UNIT[c]
            if unit >= last_unit:
                return None
            total += (1 if digit is None else digit) * unit  # a bare leading 十 is 10
            digit, last_unit = None, unit
    return total + (digit or 0)


def _cn_replace(m: re.Match[str]) -> str:
    value = _cn_int(m.group())
    return m.group() if value is None else str(value)


def normalize(text: str, gazetteer: Gazetteer | None = None) -> str:
    """The matching form of an address.

    Full-width digits and letters become ASCII (letters upper case), blanks and punctuation go
    (except '-', as in '12-3号'), '號' becomes '号' and '#' '号', and Chinese numerals before a
    door-number word become digits ('十二号' -> '12号'). With a ``gazetteer``, a leading
    '中国', province, city and county are dropped when they are the gazetteer's own.

    Examples
    --------
    >>> normalize("浙江省温州市瓯海区 梧田街道（白象村）白象路十二號")
    '浙江省温州市瓯海区梧田街道白象村白象路12号'
    """
    if not isinstance(text, str):
        return ""
    s = text.translate(_TABLE) if _NEEDS_TABLE.search(text) else text
    s = _CN_NUMBER.sub(_cn_replace, s)
    if gazetteer is not None:
        s = s[gazetteer._index.region_re.match(s).end():]
    return s


# --------------------------------------------------------------------------------------------
# Lexical patterns. A short name ('梧田', '白象') followed by a road or area word is the start
# of that road or area ('白象路', '瓯海大道', '西湖区'), not the place.

_ROADISH = re.compile(r"[东西南北中]?[\d一二三四五六七八九十]*(?:大道|大街|路|街|巷|弄|道|线|桥|公路"
                      r"|广场|花园|小区|大厦|工业区|区|县|市(?!场)|省|镇|乡)")
_NAME_CHAR = r"(?:(?![路街巷道弄号村镇乡])[\u4e00-\u9fff])"
_REGION_WORD = re.compile(_NAME_CHAR + r"{1,7}?(?:特别行政区|自治区|自治州|自治县|地区|省|市|盟|区|县|旗)")
_NOT_REGION = re.compile(r"(?:小|社|园|开发|工业|景|校|厂|商业|住宅|营业|服务|保税|风景)区$")
_TOWN_WORD = re.compile(_NAME_CHAR + r"{1,6}?(?:街道|镇|乡)")
_VILLAGE_WORD = re.compile(_NAME_CHAR + r"{1,6}?(?:村|社区)")
_DOOR = re.compile(r"(?P<road>\D*?(?:\d+[弄巷])?)(?P<number>\d+(?:-\d+)*)(?:号(?!楼)|$)"
                   r"(?:(?P<building>\d+|[A-Z])(?:幢|栋|号楼|座))?(?:(?P<unit>\d+)单元)?"
                   r"(?:(?P<room>\d+)(?:室|房)?)?")
_ROAD = re.compile(r"\D*?(?:大道|大街|路|街(?!道)|巷|弄|线)")
_PLAIN_NUMBER = re.compile(r"\d+(?:-\d+)*")


def _number_key(number: str) -> str:
    """'012-03' -> '12-3': door numbers compare as numbers."""
    if number.isdigit() and number[0] != "0":
        return number
    return "-".join(str(int(p)) for p in number.split("-"))


# --------------------------------------------------------------------------------------------
# Results


@dataclass(frozen=True, slots=True)
class ParsedAddress:
    """The parts of one address; names are the gazetteer's canonical names.

    ``normalized`` is ``normalize(text, gazetteer)``. ``town_code`` and ``village_code`` are
    set when the address identifies them; ``issue`` says why it cannot be placed (another
    district, contradictory or ambiguous parts), else None.
    """

    normalized: str
    province: str | None = None
    city: str | None = None
    county: str | None = None
    town: str | None = None
    village: str | None = None
    road: str | None = None
    number: str | None = None
    building: str | None = None
    unit: str | None = None
    room: str | None = None
    remainder: str = ""
    town_code: str | None = None
    village_code: str | None = None
    issue: str | None = None


@dataclass(frozen=True, eq=False)
class GeocodeResult:
    """Per-address results of :func:`geocode`, as aligned arrays.

    Attributes
    ----------
    lon, lat : ndarray of float64
        EPSG:4490 degrees (the gazetteer's datum); NaN where unplaced.
    level : ndarray of object
        'door', 'village', 'town', or None where unplaced.
    score : ndarray of float64
        In [0, 1]; 0 where unplaced (see the module's table).
    town_code, village_code : ndarray of object
        Codes of the place found (None where not known).
    reason : ndarray of object
        Why a row is unplaced; None where placed.
    """

    lon: FloatArray
    lat: FloatArray
    level: ObjectArray
    score: FloatArray
    town_code: ObjectArray
    village_code: ObjectArray
    reason: ObjectArray

    def __len__(self) -> int:
        return len(self.lon)

    @property
    def placed(self) -> npt.NDArray[np.bool_]:
        """True where the address was placed."""
        return ~np.isnan(self.lon)


# --------------------------------------------------------------------------------------------
# The gazetteer and its compiled matcher


def _trie(spellings: dict[str, bool]) -> str:
    """A regex matching the longest of ``spellings`` (spelling -> is a guarded stem).

    The alternation is nested as a trie, so the regex engine (in C) branches on one character
    at a time instead of trying ~1,000 names in turn; a terminal comes after its longer
    continuations, so the longest spelling wins, and a stem carries its road/area guard.
    """
    root: dict = {}
    for word, short in spellings.items():
        node = root
        for ch in word:
            node = node.setdefault(ch, {})
        node[""] = short

    def emit(node: dict) -> str:
        alts = [re.escape(ch) + emit(child) for ch, child in sorted(node.items()) if ch]
        if "" in node:
            alts.append(f"(?!{_ROADISH.pattern})" if node[""] else "")
        return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"

    return emit(root) if root else "(?!)"


def _stem(name: str, suffixes: tuple[str, ...]) -> str | None:
    for suffix in suffixes:
        if name.endswith(suffix) and len(name) - len(suffix) >= 2:
            return name[: -len(suffix)]
    return None


def canonical_village_name(name: str) -> str:
    """A committee's name as the place's name: '白象村委会' -> '白象村', '东瓯居委会' -> '东瓯社区'."""
    name = normalize(name)
    for old, new in (("村民委员会", "村"), ("村委会", "村"), ("社区居民委员会", "社区"),
                     ("社区居委会", "社区"), ("居民委员会", "社区"), ("居委会", "社区")):
        if name.endswith(old):
            return name[: -len(old)] + new
    return name


def _spellings(name: str, kind: str) -> tuple[list[str], str | None]:
    """Full spellings of a town's or village's name, and its bare stem (or None)."""
    if kind == "town":
        stem = _stem(name, ("街道", "镇", "乡"))
        extra = ("办事处", "办") if name.endswith("街道") else ("人民政府",)
        return [name] + [name + e for e in extra], stem
    stem = _stem(name, ("社区", "村"))
    if name.endswith("社区"):
        return [name, name + "居委会", name + "居民委员会", f"{stem}居委会"], stem
    return [name, name + "委会", name + "民委员会", name + "委"], stem


_REGION_SUFFIXES = ("特别行政区", "自治区", "自治州", "自治县", "省", "市", "区", "县")
_MAX_NAMES = 3  # names read in a row after the region: town, village, and one to detect clashes


class _Index:
    """Everything :func:`parse` and :func:`geocode` look up, compiled once per gazetteer."""

    def __init__(self, gaz: Gazetteer) -> None:
        self.town_code = [t[0] for t in gaz.towns]
        self.town_name = [normalize(t[1]) for t in gaz.towns]
        self.village_code = [v[0] for v in gaz.villages]
        self.village_name = [canonical_village_name(v[2]) for v in gaz.villages]
        self.town_id = {code: i for i, code in enumerate(self.town_code)}
        self.village_id = {code: i for i, code in enumerate(self.village_code)}
        if orphans := sorted({v[1] for v in gaz.villages} - self.town_id.keys()):
            raise ValueError(f"villages name towns that the gazetteer lacks: {', '.join(orphans)}")
        self.village_town = [self.town_id[v[1]] for v in gaz.villages]
        self.town_xy = np.array([t[2:4] for t in gaz.towns], dtype=np.float64).reshape(-1, 2)
        self.village_xy = np.array([v[3:5] for v in gaz.villages], dtype=np.float64).reshape(-1, 2)
        self.region_name = f"{gaz.city}{gaz.county}"
        self.region = {"province": gaz.province, "city": gaz.city, "county": gaz.county}
        # One spelling may name several places (河头村 in four towns; 茶山 a town and a village).
        self.names: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = {}
        short: dict[str, bool] = {}
        for kind, names in (("town", self.town_name), ("village", self.village_name)):
            for i, name in enumerate(names):
                full, stem = _spellings(name, kind)
                for word in full + ([stem] if stem else []):
                    t, v = self.names.get(word, ((), ()))
                    self.names[word] = (t + (i,), v) if kind == "town" else (t, v + (i,))
                    short[word] = short.get(word, True) and word == stem
        self.name_re = re.compile(_trie(short))  # one name, read up to _MAX_NAMES times (_Names)
        # For addresses with noise before the first name ('地址梧田街道...'): full names only.
        self.search = re.compile(_trie({w: False for w, s in short.items() if not s}))
        groups = ["(?P<country>中国)"]
        for kind, name in self.region.items():
            words = {normalize(name): False} if name else {}
            if name and (stem := _stem(normalize(name), _REGION_SUFFIXES)):
                words[stem] = True
            groups.append(f"(?P<{kind}>{_trie(words)})")
        self.region_re = re.compile("(?:" + "|".join(groups) + ")*")
        (self.point_village, self.point_xy, self.exact, self.door,
         self.fuzzy) = _index_points(self, gaz.points)


def _put(table: dict, key: object, i: int, xy: list[tuple[float, float]]) -> None:
    """Register point ``i`` under ``key``; a key held by points at two places becomes -1."""
    j = table.get(key)
    if j is None:
        table[key] = i
    elif j >= 0 and xy[j] != xy[i]:
        table[key] = -1


def _index_points(idx: _Index, points: Sequence[tuple]) -> tuple:
    """The door lookups: each point's village and (lon, lat); point by exact normalised
    address and by (unit, road, number), unit being a village or town code or '' (district);
    and per (unit, road, parity) the sorted plain numbers with their points, for fuzzy matches."""
    village: list[int] = []
    xy: list[tuple[float, float]] = []
    exact: dict[str, int] = {}
    door: dict[tuple[str, str, str], int] = {}
    for normalized, road, number, village_code, lon, lat in points:
        if (v := idx.village_id.get(village_code)) is None:
            raise ValueError(f"standard address {normalized} names a village that the "
                             f"gazetteer lacks: {village_code}")
        i = len(xy)
        village.append(v)
        xy.append((float(lon), float(lat)))
        key = normalize(normalized)
        key = key[idx.region_re.match(key).end():]
        _put(exact, key, i, xy)
        if not road and not number:
            parts = _door_parts(key[_read(key, idx)[1]:])[0]
            road, number = parts.get("road"), parts.get("number")
        number = normalize(number or "").removesuffix("号")
        if not _PLAIN_NUMBER.fullmatch(number):
            continue
        road, number = normalize(road or ""), _number_key(number)
        for unit in (idx.village_code[v], idx.town_code[idx.village_town[v]], ""):
            _put(door, (unit, road, number), i, xy)
    fuzzy: dict[tuple[str, str, int], list[tuple[int, int]]] = {}
    for (unit, road, number), i in door.items():
        if unit and i >= 0 and "-" not in number:
            fuzzy.setdefault((unit, road, int(number) % 2), []).append((int(number), i))
    return (village, np.array(xy, dtype=np.float64).reshape(-1, 2), exact, door,
            {k: tuple(zip(*sorted(v), strict=True)) for k, v in fuzzy.items()})


@dataclass(frozen=True, eq=False, kw_only=True, repr=False)
class Gazetteer:
    """The places of one district that addresses are matched against.

    Parameters
    ----------
    towns : sequence of (code, name, lon, lat)
        Towns and streets (镇街) with a representative point (inside the town).
    villages : sequence of (code, town_code, name, lon, lat)
        Villages and communities (村社); committee names ('白象村委会') are read as place names.
    points : sequence of (normalized, road, number, village_code, lon, lat), optional
        Standard addresses (标准地址). Without road and number they are parsed from the address.
    province, city, county : str
        The district's own names, dropped from the front of addresses ('浙江省', '温州市',
        '瓯海区'); any other province, city or county there makes the address foreign.

    Examples
    --------
    >>> gaz = Gazetteer(towns=[("330304002", "梧田街道", 120.67, 27.97)],
    ...                 villages=[("330304002001", "330304002", "白象村", 120.66, 27.96)],
    ...                 province="浙江省", city="温州市", county="瓯海区")
    >>> gaz
    Gazetteer(浙江省温州市瓯海区: 1 towns, 1 villages, 0 address points)
    """

    towns: Sequence[tuple[str, str, float, float]]
    villages: Sequence[tuple[str, str, str, float, float]]
    points: Sequence[tuple[str, str | None, str | None, str, float, float]] = ()
    province: str
    city: str
    county: str
    _index: _Index = field(init=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("towns", "villages", "points"):
            object.__setattr__(self, name, tuple(tuple(r) for r in getattr(self, name)))
        object.__setattr__(self, "_index", _Index(self))

    def __repr__(self) -> str:
        return (f"Gazetteer({self.province}{self.city}{self.county}: {len(self.towns)} towns, "
                f"{len(self.villages)} villages, {len(self._index.point_xy)} address points)")


# --------------------------------------------------------------------------------------------
# Parsing


def _foreign(s: str, start: int, end: int, idx: _Index) -> str | None:
    """Why the text at ``start`` names a place outside the district, or None."""
    words, pos = [], start
    while (m := _REGION_WORD.match(s, pos, end)) and not _NOT_REGION.search(m.group()):
        words.append(m.group())
        pos = m.end()
    if words:
        return f"address is outside {idx.region_name}: it names {''.join(words)}"
    for pattern, kind in ((_TOWN_WORD, "town"), (_VILLAGE_WORD, "village")):
        m = pattern.match(s, start, end)
        if m and not _ROADISH.match(s, m.end()):
            return f"{kind} {m.group()} is not in {idx.region_name}"
    return None


class _Names:
    """The names read one after another from ``pos``, at most :data:`_MAX_NAMES`: what the
    regex ``(?:(name))?`` written out that many times matches (its groups, start and ends; all
    its groups are optional, so each takes the first spelling that matches where the one before
    ended, and none is ever given back), with one name's regex compiled instead of three."""

    __slots__ = ("_pos", "_s", "_spans")

    def __init__(self, s: str, pos: int, name_re: re.Pattern[str]) -> None:
        self._s, self._pos, self._spans = s, pos, []
        while len(self._spans) < _MAX_NAMES and (m := name_re.match(s, pos)):
            self._spans.append(m.span())
            pos = m.end()

    def group(self, g: int) -> str | None:
        return self._s[slice(*self._spans[g - 1])] if g <= len(self._spans) else None

    def start(self) -> int:
        return self._pos

    def end(self, g: int) -> int:
        return self._spans[g - 1][1]


def _names(s: str, pos: int, idx: _Index) -> tuple[_Names, str | None]:
    """The names read at ``pos``, or after some noise ('地址：...') that names no other place;
    with no names, why the address is foreign (or None)."""
    m = _Names(s, pos, idx.name_re)
    if m.group(1) is not None:
        return m, None
    if (hit := idx.search.search(s, pos)) is None:
        return m, _foreign(s, pos, len(s), idx)
    noise = s[pos:hit.start()]
    for w in (*_REGION_WORD.finditer(noise), *_TOWN_WORD.finditer(noise)):
        if not _NOT_REGION.search(w.group()):
            return m, f"address is outside {idx.region_name}: it names {w.group()}"
    return _Names(s, hit.start(), idx.name_re), None


def _admin(m: _Names, idx: _Index) -> tuple[int, int | None, tuple[int, ...], str | None]:
    """Town and village from the names read: (end, town id, village ids, issue)."""
    town: int | None = None
    villages: tuple[int, ...] = ()
    pos = m.start()
    for g in range(1, _MAX_NAMES + 1):
        if (word := m.group(g)) is None or (town is not None and villages):
            break
        t_ids, v_ids = idx.names[word]
        if v_ids and not villages and (town is not None or not t_ids):
            villages = v_ids  # a stem of both a town and a village is the village after a town
        elif t_ids and town is None:
            town = t_ids[0]
        elif t_ids and t_ids[0] != town:
            a, b = idx.town_name[town], idx.town_name[t_ids[0]]  # type: ignore[index]
            return pos, None, (), f"address names two towns, {a} and {b} (address contradicts itself)"
        elif v_ids and v_ids != villages:
            a, b = idx.village_name[villages[0]], idx.village_name[v_ids[0]]
            return pos, None, (), f"address names two villages, {a} and {b} (address contradicts itself)"
        pos = m.end(g)
    return pos, town, villages, None


def _resolve(town: int | None, villages: tuple[int, ...],
             idx: _Index) -> tuple[int | None, int | None, str | None]:
    """The (town, village) an address names, or why it names none consistently."""
    if not villages:
        return town, None, None
    name = idx.village_name[villages[0]]
    if town is not None:
        inside = [v for v in villages if idx.village_town[v] == town]
        if not inside:
            return None, None, (f"village {name} is not in town {idx.town_name[town]} "
                                "(address contradicts itself)")
        if len(inside) > 1:
            return None, None, f"ambiguous village name {name} in town {idx.town_name[town]}"
        return town, inside[0], None
    if len(villages) > 1:
        return None, None, f"ambiguous village name {name} in {len(villages)} towns; no town given"
    return idx.village_town[villages[0]], villages[0], None


def _read(s: str, idx: _Index) -> tuple[re.Match[str], int, int | None, int | None, str | None]:
    """The region match, where the names end, the town and village ids, and the issue."""
    region = idx.region_re.match(s)
    m, issue = _names(s, region.end(), idx)
    if issue is not None:
        return region, region.end(), None, None, issue
    pos, town, villages, issue = _admin(m, idx)
    if issue is not None:
        return region, pos, None, None, issue
    return region, pos, *_resolve(town, villages, idx)


def _door_parts(rest: str) -> tuple[dict[str, str | None], str]:
    """Road, number, building, unit and room at the front of ``rest``, and what follows."""
    if door := _DOOR.match(rest):
        return door.groupdict() | {"number": _number_key(door["number"])}, rest[door.end():]
    if road := _ROAD.match(rest):
        return {"road": road.group()}, rest[road.end():]
    return {}, rest


def parse(text: str, gazetteer: Gazetteer) -> ParsedAddress:
    """Split an address into its parts, with the gazetteer as the authority for names.

    Examples
    --------
    >>> gaz = Gazetteer(towns=[("330304002", "梧田街道", 120.67, 27.97)],
    ...                 villages=[("330304002001", "330304002", "白象村", 120.66, 27.96)],
    ...                 province="浙江省", city="温州市", county="瓯海区")
    >>> p = parse("温州市瓯海区梧田白象村委会白象路１２号3幢201室", gaz)
    >>> p.city, p.county, p.town, p.village, p.road, p.number, p.building, p.room
    ('温州市', '瓯海区', '梧田街道', '白象村', '白象路', '12', '3', '201')
    >>> parse("杭州市西湖区文三路1号", gaz).issue
    'address is outside 温州市瓯海区: it names 杭州市西湖区'
    """
    idx = gazetteer._index
    s = normalize(text)
    region, pos, town, village, issue = _read(s, idx)
    parts, rest = _door_parts(s[pos:])
    return ParsedAddress(
        normalized=s[region.end():], remainder=rest, issue=issue,
        **{k: idx.region[k] for k, v in region.groupdict().items() if v and k != "country"},
        town=None if town is None else idx.town_name[town],
        village=None if village is None else idx.village_name[village],
        town_code=None if town is None else idx.town_code[town],
        village_code=None if village is None else idx.village_code[village],
        **{k: v or None for k, v in parts.items()},
    )


# --------------------------------------------------------------------------------------------
# Geocoding

_Row = tuple[float, float, str | None, float, str | None, str | None, str | None]


def _reject(reason: str) -> _Row:
    return (np.nan, np.nan, None, 0.0, None, None, reason)


def _at_point(idx: _Index, i: int, score: float) -> _Row:
    v = idx.point_village[i]
    x, y = idx.point_xy[i]
    return (x, y, "door", score, idx.town_code[idx.village_town[v]], idx.village_code[v], None)


def _door(road: str, number: str, unit: str, idx: _Index) -> _Row | None:
    """The standard address at ``road`` and ``number`` in ``unit``, exact or fuzzy, or None."""
    i = idx.door.get((unit, road, number), -1)
    if i >= 0:
        return _at_point(idx, i, SCORE_DOOR if unit else SCORE_DOOR_DISTRICT)
    main = int(number.split("-")[0])
    if not unit or (nearby := idx.fuzzy.get((unit, road, main % 2))) is None:
        return None
    numbers, ids = nearby
    k = bisect_left(numbers, main)
    gap, j = min((abs(numbers[j] - main), j) for j in (k - 1, k) if 0 <= j < len(numbers))
    if gap > FUZZY_MAX_GAP:
        return None
    return _at_point(idx, ids[j], FUZZY_SCORE - FUZZY_STEP * gap)


def _geocode_one(text: str | None, idx: _Index) -> _Row:
    if text is None or not (s := normalize(text)):
        return _reject("empty address")
    region, pos, town, village, issue = _read(s, idx)
    i = idx.exact.get(s[region.end():], -1)
    if i >= 0:  # the standard address itself, however it is worded
        return _at_point(idx, i, SCORE_DOOR)
    if issue is not None:
        return _reject(issue)
    if (d := _DOOR.match(s, pos)) is not None:
        # Without a town or village, a road and number unique in the district will do, but
        # only when the address names the district (else it could be anywhere in China).
        unit = (idx.village_code[village] if village is not None
                else idx.town_code[town] if town is not None
                else "" if region["county"] else None)
        if unit is not None and (door := _door(d["road"], _number_key(d["number"]), unit, idx)):
            return door
    if village is not None:
        x, y = idx.village_xy[village]
        return (x, y, "village", SCORE_VILLAGE, idx.town_code[town], idx.village_code[village], None)
    if town is not None:
        x, y = idx.town_xy[town]
        return (x, y, "town", SCORE_TOWN, idx.town_code[town], None, None)
    return _reject(NO_PLACE)


MEMO_SIZE = 200_000  # distinct addresses a memo of geocode() keeps (~30 MB)


def geocode(
    addresses: Sequence[str | None], gazetteer: Gazetteer, memo: dict[str, tuple] | None = None
) -> GeocodeResult:
    """Place addresses at a standard address, a village or a town of the gazetteer.

    Each distinct address is parsed once (exports repeat addresses a lot); ``memo`` keeps the
    answers across calls on the same gazetteer (a file geocoded a chunk at a time parses each
    distinct address once too; it holds at most :data:`MEMO_SIZE` addresses). Rows that cannot
    be placed get NaN coordinates and a ``reason``; see the module's table for levels and
    scores.

    Examples
    --------
    >>> gaz = Gazetteer(towns=[("330304002", "梧田街道", 120.67, 27.97)],
    ...                 villages=[("330304002001", "330304002", "白象村", 120.66, 27.96)],
    ...                 points=[("白象村白象路12号", "白象路", "12", "330304002001", 120.661, 27.961)],
    ...                 province="浙江省", city="温州市", county="瓯海区")
    >>> r = geocode(["梧田白象村白象路12号", "梧田街道白象村白象路16号", "白象村委会",
    ...              "梧田街道", "杭州市西湖区文三路1号"], gaz)
    >>> r.level.tolist(), r.score.round(2).tolist()
    (['door', 'door', 'village', 'town', None], [1.0, 0.86, 0.7, 0.4, 0.0])
    >>> r.reason[4]
    'address is outside 温州市瓯海区: it names 杭州市西湖区'
    """
    idx = gazetteer._index
    # the distinct addresses, found in C (a hash table over the strings); anything not text
    # (None, NaN) is one missing address, at the end
    values = np.empty(len(addresses), dtype=object)
    values[:] = [a if isinstance(a, str) else None for a in addresses]
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    codes = np.where(codes < 0, len(uniques), codes)
    if memo is None:
        rows: list[_Row] = [_geocode_one(text, idx) for text in uniques]
    else:
        rows = [memo[text] if text in memo else _geocode_one(text, idx) for text in uniques]
        room = MEMO_SIZE - len(memo)
        if room > 0:
            memo.update(zip(uniques[:room], rows[:room], strict=True))
    rows.append(_geocode_one(None, idx))
    cols = list(zip(*rows, strict=True))

    def column(i: int, dtype: type) -> npt.NDArray:
        return np.array(cols[i], dtype=dtype)[codes]

    return GeocodeResult(lon=column(0, np.float64), lat=column(1, np.float64),
                         level=column(2, object), score=column(3, np.float64),
                         town_code=column(4, object), village_code=column(5, object),
                         reason=column(6, object))
