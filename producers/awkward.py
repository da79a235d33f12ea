"""Comment bodies built to break careless parsing, quoting and escaping, on purpose.

Real bodies already hold quotes, commas and newlines, but rarely all the hard cases at once. Every
class below appears in generated data so that CSV quoting, JSON escaping, unicode handling and value
binding are all exercised: a body that looks like CQL must land as text, never run.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

ZWJ = "\u200d"  # zero-width joiner: glues emoji into one visible glyph; easy to split or drop by mistake

FRAGMENTS: dict[str, tuple[str, ...]] = {
    "double_quote": ('He said "hello", then left.', '""', '"', 'a "quoted" word', '"""triple"""'),
    "single_quote": ("it's", "'single quoted'", "''", "rock 'n' roll"),
    "comma": ("one, two, three", ",,,", "a,b", ", leading comma"),
    "newline": ("first line\nsecond line", "\n\nafter blank lines", "ends with a newline\n"),
    "crlf": ("windows line\r\nnext line", "\r\n\r\n", "ends with crlf\r\n"),
    "tab": ("col1\tcol2\tcol3", "\ttab-indented"),
    "brackets": ("[link](http://example.com/wiki/Foo_(bar))", '{"json": [1, 2, {"nested": null}]}',
                 "(((nested)))", "[]{}()", ")]}{[("),
    "backslash": ("C:\\Users\\reddit\\file.txt", "\\n is not a newline", 'escaped \\" quote',
                  "trailing backslash \\", "\\\\server\\share"),
    "accents": ("café naïve résumé", "Ångström, Øresund, Straße", "e\u0301 with a combining accent",
                "ñandú pingüino"),
    "cjk": ("日本語のコメントです", "这是中文评论", "한국어 댓글", "ｆｕｌｌｗｉｄｔｈ"),
    "rtl": ("مرحبا بالعالم", "שלום עולם", "mixed \u202bעברית\u202c text", "\u200fمرحبا"),
    "emoji": ("😀😂🙃", "👍🏽", "🇫🇮🇯🇵", "🎉"),
    "emoji_zwj": (f"👨{ZWJ}👩{ZWJ}👧{ZWJ}👦", f"🏳️{ZWJ}🌈", f"👩🏽{ZWJ}💻", f"🧑{ZWJ}🚀"),
    "cql": ("'); DROP KEYSPACE tenant2; --", '"; TRUNCATE tenant2.comments; //', "' OR '1'='1",
            "BEGIN BATCH DELETE FROM tenant2.comments WHERE id = 'x'; APPLY BATCH;"),
}
# Classes that are a shape of the whole body rather than characters in it.
LONG_BYTES = 10_240
SHAPES = ("long", "empty")
CLASSES = (*FRAGMENTS, *SHAPES)
_SEPARATORS = (" ", " ", "\n", ", ", "\r\n", "\t", "")


def all_in_one(rng: random.Random) -> str:
    """One fragment of every character class, in random order."""
    parts = [rng.choice(frags) for frags in FRAGMENTS.values()]
    rng.shuffle(parts)
    return _join(rng, parts)


def long_body(rng: random.Random, real: Sequence[str], size: int = LONG_BYTES) -> str:
    """About ``size`` UTF-8 bytes (Reddit allows 10,000 characters), mixing real text and every class."""
    parts: list[str] = []
    total = 0
    while total < size:
        part = all_in_one(rng) if rng.random() < 0.3 else rng.choice(real)
        parts.append(part)
        total += len(part.encode()) + 1
    return "\n".join(parts)


def mixed(rng: random.Random, real: Sequence[str]) -> str:
    """A few fragments of random classes, sometimes around a real body."""
    frags = [rng.choice(FRAGMENTS[c]) for c in rng.sample(list(FRAGMENTS), rng.randint(2, 6))]
    if real and rng.random() < 0.5:
        frags.insert(rng.randrange(len(frags) + 1), rng.choice(real))
    return _join(rng, frags)


CANARY_COUNT = 3


def canaries(rng: random.Random, real: Sequence[str]) -> list[str]:
    """Bodies that together hold every class: written first, so even a small file has them all."""
    return [all_in_one(rng), long_body(rng, real), ""]


def pool(rng: random.Random, real: Sequence[str], size: int = 256) -> list[str]:
    """A deterministic set of awkward bodies to draw from; the first CANARY_COUNT are the canaries."""
    bodies = canaries(rng, real)
    while len(bodies) < size:
        roll = rng.random()
        if roll < 0.05:
            bodies.append("")
        elif roll < 0.10:
            bodies.append(long_body(rng, real))
        elif roll < 0.30:
            bodies.append(all_in_one(rng))
        else:
            bodies.append(mixed(rng, real))
    return bodies


def _join(rng: random.Random, parts: Sequence[str]) -> str:
    out = [parts[0]] if parts else []
    for part in parts[1:]:
        out.append(rng.choice(_SEPARATORS))
        out.append(part)
    return "".join(out)
