#!/usr/bin/env python3
"""Writes read-contract.json: the key names and query answers that cachedeck's
Rust code and the TypeScript reader (clients/typescript) must both produce.

The escaping here is written from the README's rule, independently of both
implementations. Run it after changing the cases below and commit the JSON:
    python3 tests/vectors/make_read_contract.py
"""
import json
import os

ESCAPED = set(b":{}*?[]\\% ")
NULL = "%N"


def esc(v):
    if v is None:
        return NULL
    out = []
    for b in str(v).encode("utf-8"):
        if b in ESCAPED or b < 0x20 or b >= 0x7F:
            out.append("%%%02X" % b)
        else:
            out.append(chr(b))
    return "".join(out)


def entry(ds, m, p, prov, f):
    return f"cache:{{ds:{ds}}}:m:{esc(m)}:p:{esc(p)}:prov:{esc(prov)}:freq:{esc(f)}"


def indexes(ds, m, p, prov, f):
    t = f"idx:{{ds:{ds}}}:m:{esc(m)}"
    return {
        "measureFreq": f"{t}:freq:{esc(f)}",
        "practice": f"{t}:p:{esc(p)}:freq:{esc(f)}",
        "provider": f"{t}:prov:{esc(prov)}:freq:{esc(f)}",
    }


HOSTILE = [
    "Charges", "114", "a:b", "é", "100%", "two words", "{x}", "*", "?", "[a]",
    "back\\slash", "tab\there", "line\nbreak", "\u0001", "\u007f", "", "%N",
    "%41", "日本", "😀", "cache:{ds:2}:m", "a/b.c-d_e~f!@#$^&()+=,;'\"<>|`",
]

escape_cases = [{"value": v, "escaped": esc(v)} for v in HOSTILE] + [
    {"value": None, "escaped": NULL}
]
# Spelled out by hand, so the generator itself is checked too.
assert esc("a:b") == "a%3Ab" and esc("é") == "%C3%A9" and esc("100%") == "100%25"
assert esc("%N") == "%25N" and esc("") == "" and esc("\u007f") == "%7F"

key_cases = []
groups_for_keys = [
    (1, "Charges", "114", "5", "Monthly"),
    (1, "Charges", "114", None, "Monthly"),
    (42, "a:b", "é", "100%", "two words"),
    (42, "{x}", "*", "?", "[a]"),
    (3, "tab\there", "\u0001", "\u007f", "line\nbreak"),
    (3, "", "", "", ""),
    (3, "%N", "%41", "%N", "back\\slash"),
    (7, "日本", "😀", None, "cache:{ds:2}:m"),
]
for ds, m, p, prov, f in groups_for_keys:
    key_cases.append({
        "datasource": ds,
        "measure": m, "practice": p, "provider": prov, "frequency": f,
        "entry": entry(ds, m, p, prov, f),
        "indexes": indexes(ds, m, p, prov, f),
    })

DS = 7
GEN = 3
raw_groups = [
    ("Charges", "114", "5", "Monthly"),
    ("Charges", "114", "6", "Monthly"),
    ("Charges", "115", "5", "Monthly"),
    ("Charges", "115", None, "Monthly"),
    ("Charges", "116", "7", "Monthly"),
    ("Charges", "114", "5", "Weekly"),
    ("Charges", "a:b", "é", "Monthly"),
    ("Charges", "a:b", None, "Monthly"),
    ("Payments", "114", "5", "Monthly"),
    ("é 100%", "{x}", "*", "Monthly"),
    ("é 100%", "", "", "Monthly"),
]
groups = []
for i, (m, p, prov, f) in enumerate(raw_groups):
    rows = [
        {"measure": m, "practice_uid": p, "provider_uid": prov, "frequency": f,
         "amount": 10 * i + j + 0.5, "row": j}
        for j in range(1 + i % 3)
    ]
    groups.append({"measure": m, "practice": p, "provider": prov, "frequency": f,
                   "entry": entry(DS, m, p, prov, f), "rows": rows})


def select(m, f, practices=(), providers=(), null_provider=False):
    provs = list(providers) + ([None] if null_provider else [])
    out = []
    for g in groups:
        if g["measure"] != m or g["frequency"] != f:
            continue
        if practices and g["practice"] not in practices:
            continue
        if provs and g["provider"] not in provs:
            continue
        out.append(g)
    return sorted(out, key=lambda g: g["entry"].encode())


def case(name, m, f, practices=(), providers=(), null_provider=False, before=None, hit=True):
    chosen = select(m, f, practices, providers, null_provider)
    c = {
        "name": name,
        "query": {"measure": m, "frequency": f, "practices": list(practices),
                  "providers": list(providers), "nullProvider": null_provider},
        "entries": [g["entry"] for g in chosen],
        "hit": hit,
        "generation": GEN,
        "rows": [r for g in chosen for r in g["rows"]] if hit else [],
    }
    if before:
        c["before"] = before
    return c


cases = [
    case("measure and frequency", "Charges", "Monthly"),
    case("one practice", "Charges", "Monthly", practices=["114"]),
    case("two practices: union", "Charges", "Monthly", practices=["114", "115"]),
    case("one provider", "Charges", "Monthly", providers=["5"]),
    case("practice and provider: intersection", "Charges", "Monthly", practices=["114", "115"], providers=["5"]),
    case("NULL provider", "Charges", "Monthly", null_provider=True),
    case("provider or NULL", "Charges", "Monthly", providers=["5"], null_provider=True),
    case("hostile practice", "Charges", "Monthly", practices=["a:b"]),
    case("hostile provider", "Charges", "Monthly", providers=["é"]),
    case("hostile measure", "é 100%", "Monthly"),
    case("empty practice and provider", "é 100%", "Monthly", practices=[""], providers=[""]),
    case("other frequency", "Charges", "Weekly"),
    case("unknown measure: empty hit", "Nope", "Monthly"),
    case("unknown practice: empty hit", "Charges", "Monthly", practices=["999"]),
    case("an indexed entry is gone: miss", "Charges", "Monthly", practices=["114"],
         before={"delete": [entry(DS, "Charges", "114", "6", "Monthly")]}, hit=False),
    case("master absent: miss", "Charges", "Monthly",
         before={"delete": [f"idx:{{ds:{DS}}}:master"]}, hit=False),
]
# With the master gone the script answers before reading any index.
cases[-1]["entries"] = []
# Members that are not entry keys of the datasource (README, "Reading": only
# members starting with cache:{ds:N}: are read): bytes that are not UTF-8,
# another datasource's entry (one whose tag shares the first bytes, so in
# another cluster slot), other prefixes of the same slot (a shadow entry, the
# meta hash, the master set itself, the tag without its ':'). Planted in the
# master and in the sets a query reads, they change nothing: still a hit with
# the same rows. A member in both a practice and a provider index survives
# the intersection, so the filter must hold there too.
FOREIGN = [
    b"\xff\xfe\x00cache:{ds:%d}:m:Charges" % DS,
    entry(DS * 10, "Charges", "114", "5", "Monthly").encode(),
    entry(DS, "Charges", "114", "5", "Monthly").replace("cache:", "cache:shadow:", 1).encode(),
    f"cache:meta:{{ds:{DS}}}".encode(),
    f"idx:{{ds:{DS}}}:master".encode(),
    f"cache:{{ds:{DS}}}".encode(),
]
for m in FOREIGN:
    assert not m.startswith(f"cache:{{ds:{DS}}}:".encode())


def plant(*sets):
    return {"add": [{"set": s, "memberHex": m.hex()} for s in sets for m in FOREIGN]}


_ix = indexes(DS, "Charges", "114", "5", "Monthly")
_ix115 = indexes(DS, "Charges", "115", None, "Monthly")
cases += [
    case("foreign members in the master and the measure index: ignored", "Charges", "Monthly",
         before=plant(f"idx:{{ds:{DS}}}:master", _ix["measureFreq"])),
    case("foreign members in practice and provider indexes: ignored", "Charges", "Monthly",
         practices=["114", "115"], providers=["5"], null_provider=True,
         before=plant(f"idx:{{ds:{DS}}}:master", _ix["practice"], _ix["provider"],
                      _ix115["practice"], _ix115["provider"])),
]

doc = {
    "about": (
        "Shared by cachedeck's Rust tests (tests/it/vectors.rs) and the TypeScript reader's "
        "tests (clients/typescript/test). Made by make_read_contract.py. 'escape': one key "
        "component (null = SQL NULL). 'keys': a group's entry key and its three index keys. "
        "'queries': write 'groups' in the seed's format (entry = JSON array of rows; master, "
        "the three indexes and the index list; meta generation), apply a case's 'before' "
        "('delete': keys to delete; 'add': members to add to sets, as hex of their bytes), run "
        "'query' on datasource 'datasource': 'entries' are the selected entry keys in bytewise "
        "order, 'rows' the answer's rows (empty on a miss)."
    ),
    "escape": escape_cases,
    "keys": key_cases,
    "queries": {"datasource": DS, "generation": GEN, "groups": groups, "cases": cases},
}
path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "read-contract.json")
with open(path, "w", encoding="utf-8") as fh:
    json.dump(doc, fh, ensure_ascii=True, indent=1)
    fh.write("\n")
print(f"wrote {path}: {len(escape_cases)} escapes, {len(key_cases)} key cases, {len(cases)} queries")
