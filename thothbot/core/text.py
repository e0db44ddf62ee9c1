"""Text people wrote, made safe for the bot to repeat where others read it.

Two tricks turn a customer's words against the staff who read them in an embed or a card:

- A masked link, ``[our bank](https://evil.example)``, shows words where the address should
  be. Breaking the ``](`` that joins its two halves leaves ``[our bank] (https://evil.example)``:
  no renderer (Discord's or CommonMark) makes a link of it, and the address is in plain sight.
- Bidirectional formatting characters (embeddings, overrides, isolates and the invisible marks)
  reorder what follows them, so ``exe.txt`` can be shown for ``txt.exe`` and an amount or a
  name can read backwards. They are dropped. The letters of right-to-left scripts (Arabic,
  Hebrew...) are untouched: they lay themselves out without these controls.

Everything else, ordinary Markdown, emoji and every script, comes back as it was.
"""

from __future__ import annotations

# U+202A-U+202E embeddings and overrides, U+2066-U+2069 isolates, U+200E/U+200F the
# left-to-right and right-to-left marks, U+061C the Arabic letter mark.
BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)
_DROP_BIDI = str.maketrans(dict.fromkeys(BIDI_CONTROLS))
LINK_JOIN = "]("  # where a masked link's text meets its address
BROKEN_JOIN = "] ("


def neutralize(text: str) -> str:
    """``text`` with its bidirectional controls dropped and its masked links broken open.

    Controls go first, so that one hidden between ``]`` and ``(`` cannot survive as a link
    once removed. Applying it twice changes nothing more.
    """
    return text.translate(_DROP_BIDI).replace(LINK_JOIN, BROKEN_JOIN)
