"""Find personal data and pasted secrets in ticket text and replace them with typed placeholders.

Pure: standard library plus ``phonenumbers`` (its metadata only); no I/O, no clock.
``Redactor.find`` returns the entities as sorted, disjoint offsets into the input;
``Redactor.redact`` (and the module-level ``redact``) swap each for ``[EMAIL]``, ``[PHONE]``,
``[CARD]``, ``[IBAN]``, ``[IP]``, ``[SSN]`` or ``[SECRET]``.

Speed: one regex pass finds the runs of digits and separators, and each number detector only
looks inside a run with enough digits for it; e-mail starts at each "@", IBANs where two
capitals meet two digits, IPv6 where two colons are close, secrets only when a cheap substring
test hints at one. Phone numbers are never searched with ``PhoneNumberMatcher`` (one pass per
region) nor parsed at all: the regions' ``phonenumbers`` metadata is compiled once into regexes
that give ``is_valid_number``'s answer for the digits (``tests/test_redact.py`` checks that they
agree).

Decisions on the ambiguous cases:

* Phones. International forms (``+44 20 ...``, ``0049 30 ...``) need 8-15 digits and must be
  valid for the country code they start with. National forms need 9-12 digits (so 5-8 digit
  order ids, dates and postcodes never qualify) and must be valid in a configured region or
  one sharing its country code (US: Canada, ...). Where numbers are always written with the
  trunk "0" (GB, DE, FR, NL, ...) it is required, so "771234567890" is a parcel number, not a
  German phone. A bare digit run needs a phone word just before it ("call", "Telefon",
  "portable", "móvil", ...) unless it has 10+ digits and starts with "0". The label nearest
  before a number decides: after "order", "invoice", "tracking", "ticket", "IBAN", "version",
  "#", ... it is not a phone. Dates, dotted quads, decimals, SSN-shaped ``ddd-dd-dddd``,
  browser versions (``120.0.6099.109``) and the digits of a failed IBAN are never phones.
* Cards. 13-19 digits, bare or grouped 4-4-4-4(-n), 4-6-5 or 4-6-4 with one kind of separator,
  Luhn-valid, and with a length allowed for the issuer network its prefix belongs to (Visa,
  Mastercard 51-55 and 2221-2720, Amex, Discover, JCB, Diners, UnionPay, Maestro, Mir, RuPay,
  Troy, Verve, Dankort, Elo/Hipercard, ...): Luhn-valid runs starting 0, 1, 7, 9 or an
  unassigned 8 (IMEIs, parcel numbers) are refused. Discord snowflakes are 17-20 digits without
  separators, and 17-19 digit cards are rare and written in groups, so a bare run of 17+ digits
  is a card only right after a card word ("card", "visa", "Karte", "tarjeta", ...). A tail of a
  longer grouped number (``9400 1000 ...`` parcel numbers) is not a card either.
* IBANs: a known country code, its exact length, mod-97 valid, written compact or in groups of
  four separated by single spaces.
* SSNs. ``AAA-GG-SSSS`` with dashes counts on its own (area 000, 666 and 900-999, group 00 and
  serial 0000 are refused; "order 123-45-6789" is not one); spaced or undashed digits need
  "SSN"/"social security" just before them.
* IPs. IPv4 needs four octets 0-255 (``ipaddress`` decides) and is not an IP right after "v",
  "version", "build", "firmware", "Chrome", "upgraded to", ...; IPv6 is what ``ipaddress``
  accepts among colon-hex runs with "::" or eight groups, so times and MAC addresses stay.
* Secrets: Discord bot tokens, OpenAI, GitHub, Slack (and Slack/Discord webhook URLs), Stripe,
  AWS access key ids, JWTs, and the value after "Bearer" (with a digit or mixed case).
* Overlaps resolve to one entity: the longest span wins, then the most specific type
  (SECRET, IBAN, CARD, EMAIL, SSN, IP, PHONE).
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import cache

import phonenumbers
from phonenumbers import PhoneMetadata

__all__ = [
    "DEFAULT_REGIONS",
    "Entity",
    "EntityType",
    "Redaction",
    "Redactor",
    "redact",
]


class EntityType(StrEnum):
    """The kinds of data the redactor finds; the value is the placeholder's label."""

    EMAIL = "EMAIL"
    PHONE = "PHONE"
    CARD = "CARD"
    IBAN = "IBAN"
    IP = "IP"
    SSN = "SSN"
    SECRET = "SECRET"  # noqa: S105 - a label, not a password


@dataclass(frozen=True, slots=True)
class Entity:
    """One finding: ``text[start:end]`` is the sensitive part."""

    type: EntityType
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Redaction:
    """The redacted text and the entities found in the original (offsets into the original)."""

    text: str
    entities: tuple[Entity, ...]


DEFAULT_REGIONS: tuple[str, ...] = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "BR")

# Ties between overlapping spans of equal length go to the lower rank.
_RANK: dict[EntityType, int] = {
    EntityType.SECRET: 0,
    EntityType.IBAN: 1,
    EntityType.CARD: 2,
    EntityType.EMAIL: 3,
    EntityType.SSN: 4,
    EntityType.IP: 5,
    EntityType.PHONE: 6,
}

_CONTEXT_WINDOW = 32
_CONTEXT_WORDS = 5
# Stripped from both ends of a context word; "#" stays, as a label ("order #") of its own.
_PUNCTUATION = ".,;:!?()[]{}<>\"'/\\|=*_~`“”«»¿¡…\u2013\u2014-"
# A sentence break that does not end an abbreviation the number belongs to ("Tel. 030 ...").
_ABBREVIATIONS = ("tel", "tél", "nr", "no", "num", "ph", "tlf", "mob")

_DIGIT = re.compile(r"\d", re.ASCII)
# A run of digits and the separators numbers are written with; each number detector only
# looks inside these runs (plus two characters of context either side).
_CLUSTER = re.compile(r"[0-9][0-9 \t.()/-]{5,}", re.ASCII)

# --- e-mail -----------------------------------------------------------------------------------

# The domain is matched right after each "@"; the local part is walked back from it.
_EMAIL_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])")
_LOCAL_CHARS = frozenset("._%+-'")

# --- secrets ----------------------------------------------------------------------------------

_B64 = r"[A-Za-z0-9_-]"
_SECRET = re.compile(
    r"(?<![\w-])(?:"
    rf"[MNO]{_B64}{{23,31}}\.{_B64}{{6}}\.{_B64}{{27,40}}"  # Discord bot token
    r"|sk-(?:proj-|svcacct-|admin-|ant-)?[A-Za-z0-9_-]{20,}"  # OpenAI (and alike)
    r"|gh[pousr]_[A-Za-z0-9]{30,255}"  # GitHub classic tokens
    r"|github_pat_[A-Za-z0-9_]{40,255}"  # GitHub fine-grained tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|xapp-\d-[A-Za-z0-9-]{10,}"  # Slack app-level tokens
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe keys
    r"|whsec_[A-Za-z0-9]{20,}"  # Stripe webhook secrets
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}"  # AWS access key ids
    rf"|eyJ{_B64}{{8,}}\.{_B64}{{8,}}\.{_B64}{{8,}}"  # JWT
    r")(?![\w-])"
    r"|https?://hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]+"
    r"|https?://(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]+",
    re.ASCII,
)
_DISCORD_HINT = re.compile(r"\.[A-Za-z0-9_-]{6}\.", re.ASCII)
_BEARER = re.compile(r"\bbearer\s+([A-Za-z0-9._~+/-]{16,}=*)(?![\w.~+/=-])", re.ASCII | re.I)

# --- numbers: context words (lower case; prefixes match word starts, the sets whole words) ---

_PHONE_PREFIXES = (
    "phone", "telephon", "telefon", "téléphon", "teléfon", "telefoon", "mobil", "mobiel",
    "móvil", "movil", "handy", "cell", "celular", "call", "anruf", "rufnummer", "erreich",
    "whatsapp", "sms", "text", "reach", "contact", "kontakt", "contato", "contacto",
    "portable", "joindre", "appel", "rappel", "llam", "ligar", "ligue", "chiam", "bellen",
    "fax",
)  # fmt: skip
_PHONE_WORDS = frozenset({"tel", "tél", "tlf", "fon", "ring", "cel", "whats", "liga"})
_REFERENCE_PREFIXES = (
    "order", "invoice", "tracking", "track", "shipment", "parcel", "package", "fedex",
    "ticket", "reference", "serial", "transaction", "receipt", "account", "version", "build",
    "release", "firmware", "imei", "iban", "swift", "konto", "chrome", "firefox", "safari",
    "windows", "android", "bestell", "rechnung", "sendung", "auftrag", "kunden", "customer",
    "commande", "facture", "colis", "suivi", "pedido", "factura", "seguimiento", "envío",
    "envio", "encomenda", "fatura", "rastreio", "ordine", "fattura", "postcode", "error",
    "sku", "serie",
)  # fmt: skip
_REFERENCE_WORDS = frozenset(
    {"#", "no#", "nr#", "ord", "inv", "ref", "id", "ups", "dhl", "usps", "txn", "rib", "bic",
     "edge", "ios", "v", "ver", "fw", "po", "so", "case", "qty", "zip", "plz", "cep", "part"}
)  # fmt: skip
_CARD_PREFIXES = (
    "card", "visa", "master", "amex", "american", "discover", "jcb", "diners", "unionpay",
    "maestro", "karte", "kredit", "credit", "carte", "tarjeta", "cartão", "cartao", "carta",
)  # fmt: skip
_CARD_WORDS = frozenset({"cc"})
_SSN_PREFIXES = ("ssn", "social", "ss#")
_NO_WORDS: frozenset[str] = frozenset()
_VERSION_WORDS = frozenset({"v", "ver", "fw", "app", "build", "client", "patch"})
_VERSION_PREFIXES = (
    "version", "versión", "versão", "versione", "release", "firmware", "chrome", "firefox",
    "android", "ios", "windows", "build",
)  # fmt: skip
_UPDATE_PREFIXES = ("updat", "upgrad", "aktualisier", "mise", "actualiz", "atualiz")

# --- IBAN -------------------------------------------------------------------------------------

_IBAN_LENGTHS: dict[str, int] = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BI": 27, "BR": 29, "BY": 28, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DJ": 27,
    "DK": 18, "DO": 28, "EE": 20, "EG": 29, "ES": 24, "FI": 18, "FK": 18, "FO": 18, "FR": 27,
    "GB": 22, "GE": 22, "GI": 23, "GL": 18, "GR": 27, "GT": 28, "HN": 28, "HR": 21, "HU": 28,
    "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27, "JO": 30, "KW": 30, "KZ": 20, "LB": 28,
    "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21, "LY": 25, "MC": 27, "MD": 24, "ME": 22,
    "MK": 19, "MN": 20, "MR": 27, "MT": 31, "MU": 30, "NI": 28, "NL": 18, "NO": 15, "OM": 23,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "RU": 33, "SA": 24,
    "SC": 31, "SD": 18, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "SO": 23, "ST": 25, "SV": 28,
    "TL": 23, "TN": 24, "TR": 26, "UA": 29, "VA": 22, "VG": 24, "XK": 20, "YE": 30,
}  # fmt: skip
_IBAN_MASK = bytes(
    65 if 65 <= byte <= 90 else 48 if 48 <= byte <= 57 else 32 for byte in range(256)
)

# --- cards ------------------------------------------------------------------------------------

_CARD = re.compile(r"(?<![\w.,/#$€£=@-])\d(?:[ -]?\d){11,22}(?!\w|[.,/]\d)", re.ASCII)
_CARD_SEP = re.compile(r"[ -]")
_LEADING_GROUP = re.compile(r"[+(]*([0-9]+)[^0-9]*", re.ASCII)
_CARD_NOT_AFTER = frozenset(".,/#$€£=@-")
_ALL = frozenset(range(13, 20))
_L16 = frozenset({16})
_L16_19 = frozenset(range(16, 20))
_L14_19 = frozenset(range(14, 20))
# (first prefix, last prefix, allowed lengths); prefixes compare on the same number of digits.
_CARD_RANGES: tuple[tuple[int, int, frozenset[int]], ...] = (
    (4, 4, frozenset({13, 16, 19})),  # Visa (Elo's 4xxx ranges included)
    (51, 55, _L16),  # Mastercard
    (2221, 2720, _L16),  # Mastercard 2-series
    (34, 34, frozenset({15})),  # American Express
    (37, 37, frozenset({15})),
    (6011, 6011, _L16_19),  # Discover
    (644, 649, _L16_19),
    (65, 65, _L16_19),  # Discover, RuPay
    (622126, 622925, _L16_19),  # Discover / UnionPay co-brand
    (3528, 3589, _L16_19),  # JCB
    (300, 305, _L14_19),  # Diners Club
    (3095, 3095, _L14_19),
    (36, 36, _L14_19),
    (38, 39, _L14_19),
    (62, 62, _L16_19),  # UnionPay
    (81, 82, _L16_19),  # UnionPay 81xx, RuPay
    (5018, 5018, _ALL),  # Maestro
    (5020, 5020, _ALL),
    (5038, 5038, _ALL),
    (5893, 5893, _ALL),
    (6304, 6304, _ALL),
    (6759, 6759, _ALL),
    (6761, 6763, _ALL),
    (2200, 2204, _L16_19),  # Mir
    (2205, 2205, _L16),  # Borica
    (60, 60, _L16),  # RuPay
    (508, 508, _L16),
    (353, 353, _L16),
    (356, 356, _L16),
    (9792, 9792, _L16),  # Troy
    (9860, 9860, _L16),  # Humo
    (8600, 8600, _L16),  # Uzcard
    (506099, 506198, frozenset({16, 18, 19})),  # Verve
    (650002, 650027, frozenset({16, 18, 19})),
    (5019, 5019, _L16),  # Dankort
    (5041, 5041, _L16),  # Elo
    (5066, 5067, _L16),
    (509, 509, _L16),
    (6277, 6277, _L16),
    (6362, 6363, _L16),
    (6516, 6516, _L16),
    (6550, 6550, _L16),
    (606282, 606282, frozenset({16, 19})),  # Hipercard
    (384100, 384100, frozenset({16, 19})),
    (384140, 384140, frozenset({16, 19})),
    (384160, 384160, frozenset({16, 19})),
    (636, 639, _L16_19),  # InterPayment, InstaPayment
    (357111, 357111, _L16),  # LankaPay
)

# --- SSN / IP ---------------------------------------------------------------------------------

_SSN = re.compile(r"(?<![\w-])(\d{3})([- ]?)(\d{2})\2(\d{4})(?![\w-])", re.ASCII)
_IPV4 = re.compile(r"(?<![\w.-])(?:\d{1,3}\.){3}\d{1,3}(?![\w-]|\.\d)", re.ASCII)
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{2,45}(?:%[A-Za-z0-9_.-]+)?",
    re.ASCII,
)

_COLON_PAIR = re.compile(r":[0-9A-Fa-f]{0,4}:", re.ASCII)
_IPV6_CHARS = frozenset("0123456789abcdefABCDEF:.")

# --- phones -----------------------------------------------------------------------------------

_PHONE = re.compile(
    r"(?<![\w+@/.:=#$€£-])(?:\+|\(\+?)?\d(?:[\d \t()-]|(?<=\d)[./](?=\d)){5,24}\d"
    r"(?![\w@]|[.:/-]\d)",
    re.ASCII,
)
_PHONE_SEPARATORS = frozenset(" \t().-/")
_NOT_A_PHONE = re.compile(
    r"(?:\d{1,2}[./-]\d{1,2}[./-](?:19|20)\d\d|(?:19|20)\d\d[./-]\d{1,2}[./-]\d{1,2})(?!\d)"
    r"|\d{1,3}(?:\.\d{1,3}){3}$|\d+\.\d+$|\d{3}-\d{2}-\d{4}$",
    re.ASCII,
)
_IBAN_BEFORE = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: [A-Z0-9]{4})* $", re.ASCII)


_Desc = tuple[frozenset[int], re.Pattern[str]]
# Regions where a nationally written number always carries its trunk prefix "0". (In the US
# the trunk "1" is usually left out; in Brazil and India the "0" often is.)
_TRUNK_WRITTEN = frozenset(
    {"GB", "GG", "JE", "IM", "DE", "FR", "NL", "AT", "CH", "BE", "IE", "SE", "FI", "TR", "AU", "NZ"}
)


@dataclass(frozen=True, slots=True)
class _RegionRule:
    """A region's numbering plan from ``phonenumbers`` metadata, compiled for quick tests."""

    region: str
    national_prefix: str
    trunk_required: bool  # national numbers are always written with the trunk prefix
    general: _Desc
    types: tuple[_Desc, ...]
    any_type: re.Pattern[str]  # the type patterns in one, to rule most numbers out at once

    def valid_nsn(self, nsn: str) -> bool:
        """Whether ``nsn`` (a national significant number) has a known type in this region.

        The same test ``phonenumbers.is_valid_number`` makes, minus the parsing.
        """
        if not _desc_matches(self.general, nsn) or self.any_type.fullmatch(nsn) is None:
            return False
        return any(_desc_matches(desc, nsn) for desc in self.types)

    def could_be(self, digits: str, *, national: bool) -> bool:
        """Whether ``digits`` are a valid number here, written with or without the trunk prefix.

        Written nationally in a region that always writes its trunk prefix (030 ... in
        Germany, 06 ... in France), the prefix is required: "771234567890" is a valid German
        number to ``phonenumbers`` but no German would write it so; it is a parcel number.
        """
        prefix = self.national_prefix
        if prefix and digits.startswith(prefix) and self.valid_nsn(digits[len(prefix) :]):
            return True
        return not (national and self.trunk_required) and self.valid_nsn(digits)

    def screen(self, *, national: bool) -> str:
        """A regex source matching at least the digits ``could_be`` accepts."""
        prefix = re.escape(self.national_prefix)
        optional = "" if national and self.trunk_required else "?"
        return f"(?:{prefix}){optional}(?:{self.general[1].pattern})"


def _desc_matches(desc: _Desc, nsn: str) -> bool:
    lengths, pattern = desc
    return (not lengths or len(nsn) in lengths) and pattern.fullmatch(nsn) is not None


def _compile_desc(desc: phonenumbers.PhoneNumberDesc | None, general: _Desc | None) -> _Desc | None:
    if desc is None or desc.national_number_pattern is None:
        return None
    lengths = frozenset(desc.possible_length or ())
    if general is not None and not lengths:
        lengths = general[0]
    if lengths == frozenset({-1}):
        return None  # the region has no numbers of this type
    return lengths, re.compile(desc.national_number_pattern)


@cache
def _region_rule(region: str) -> _RegionRule:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        raise ValueError(f"Unknown phone region {region!r}")
    general = _compile_desc(metadata.general_desc, None) or (frozenset(), re.compile(".*"))
    types = tuple(
        desc
        for desc in (
            _compile_desc(getattr(metadata, name), general)
            for name in (
                "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
                "personal_number", "voip", "pager", "uan", "voicemail",
            )
        )
        if desc is not None
    )  # fmt: skip
    prefix = metadata.national_prefix or ""
    return _RegionRule(
        region=region,
        national_prefix=prefix,
        trunk_required=bool(prefix) and region in _TRUNK_WRITTEN,
        general=general,
        types=types,
        any_type=re.compile("|".join(f"(?:{desc[1].pattern})" for desc in types) or "(?!)"),
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """Regions checked together: one regex screens out most digits before the exact tests."""

    rules: tuple[_RegionRule, ...]
    national: bool  # digits as written inside the country, else after the country code
    screen: re.Pattern[str]

    def valid(self, digits: str) -> bool:
        return self.screen.fullmatch(digits) is not None and any(
            rule.could_be(digits, national=self.national) for rule in self.rules
        )


@cache
def _plan(regions: tuple[str, ...], *, national: bool) -> _Plan:
    rules = tuple(_region_rule(region) for region in regions)
    screen = re.compile("|".join(rule.screen(national=national) for rule in rules))
    return _Plan(rules=rules, national=national, screen=screen)


def _with_siblings(regions: Sequence[str]) -> tuple[str, ...]:
    """The regions, each followed by those sharing its country code (US: CA, the Caribbean).

    A number written nationally in the US may be Canadian; ``is_valid_number`` agrees.
    """
    chosen = [region.upper() for region in regions]
    for code in chosen:
        _region_rule(code)  # refuses an unknown region
    siblings = [
        sibling
        for code in chosen
        for sibling in phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(
            phonenumbers.country_code_for_region(code), ()
        )
        if sibling.isalpha()
    ]
    return tuple(dict.fromkeys(chosen + siblings))  # the chosen regions are tried first


@cache
def _country_plan(country_code: int) -> _Plan | None:
    regions = phonenumbers.COUNTRY_CODE_TO_REGION_CODE.get(country_code, ())
    geographic = tuple(region for region in regions if region.isalpha())
    return _plan(geographic, national=False) if geographic else None


def _international_could_be(digits: str) -> bool:
    """Whether ``digits`` (country code first) are a valid number of the country they name."""
    for size in (1, 2, 3):
        if int(digits[:size]) in phonenumbers.COUNTRY_CODE_TO_REGION_CODE:
            # Country calling codes are prefix-free: the first one that exists is the one.
            plan = _country_plan(int(digits[:size]))
            return plan is not None and plan.valid(digits[size:])
    return False


# Luhn: every second digit from the right is doubled, and a doubled digit counts its digit sum.
_LUHN_DOUBLE = str.maketrans("0123456789", "0246813579")


def _luhn_ok(digits: str) -> bool:
    kept = digits[-1::-2]
    doubled = digits[-2::-2].translate(_LUHN_DOUBLE)
    return (sum(map(int, kept)) + sum(map(int, doubled))) % 10 == 0


def _card_prefix_table() -> dict[int, dict[str, frozenset[int]]]:
    """prefix width -> prefix -> allowed lengths, from ``_CARD_RANGES``."""
    table: dict[int, dict[str, frozenset[int]]] = {}
    for first, last, lengths in _CARD_RANGES:
        width = len(str(first))
        row = table.setdefault(width, {})
        for prefix in range(first, last + 1):
            key = str(prefix)
            row[key] = row.get(key, frozenset()) | lengths
    return table


_CARD_PREFIXES_BY_WIDTH = _card_prefix_table()


def _card_network_ok(digits: str) -> bool:
    """Whether ``digits`` start with an issuer prefix that issues cards of this length."""
    length = len(digits)
    for width, row in _CARD_PREFIXES_BY_WIDTH.items():
        lengths = row.get(digits[:width])
        if lengths is not None and length in lengths:
            return True
    return False


_IBAN_LETTERS = str.maketrans({chr(65 + i): str(10 + i) for i in range(26)})


def _iban_ok(compact: str) -> bool:
    """ISO 13616 mod-97: move the first four characters to the end, letters to 10..35."""
    return int((compact[4:] + compact[:4]).translate(_IBAN_LETTERS)) % 97 == 1


def _words_before(text: str, start: int) -> list[str]:
    """The last few lower-cased words before ``start``, within the same sentence.

    Words keep their punctuation; ``_nearest`` strips the outer ("tel.:" is "tel") and keeps
    the inner ("ord-2026-004512", "v1/orders").
    """
    window = text[max(0, start - _CONTEXT_WINDOW) : start].lower()
    end = max(window.rfind(". "), window.rfind("! "), window.rfind("? "), window.rfind("\n"))
    if end >= 0 and not window[:end].endswith(_ABBREVIATIONS):
        window = window[end + 1 :]
    return window.split()[-_CONTEXT_WORDS:]


def _nearest(
    words: list[str],
    positive: tuple[str, ...],
    positive_words: frozenset[str],
    negative: tuple[str, ...] = (),
    negative_words: frozenset[str] = _NO_WORDS,
) -> int:
    """1 if the keyword nearest the end of ``words`` is positive, -1 if negative, else 0."""
    for raw in reversed(words):
        word = raw.strip(_PUNCTUATION)
        if word in positive_words or word.startswith(positive):
            return 1
        if word in negative_words or (negative and word.startswith(negative)):
            return -1
    return 0


class Redactor:
    """Finds and replaces PII and secrets; safe to share, it keeps no per-call state."""

    __slots__ = ("_plan",)

    def __init__(self, regions: Sequence[str] = DEFAULT_REGIONS) -> None:
        self._plan = _plan(_with_siblings(regions), national=True)

    def find(self, text: str) -> list[Entity]:
        """Every entity in ``text``, sorted by offset, none overlapping another."""
        if not text:
            return []
        found: list[Entity] = []
        if "@" in text:
            _emails(text, found)
        if _maybe_secret(text):
            _secrets(text, found)
        if ":" in text:
            _ipv6(text, found)
        # Every number-shaped detector works inside the digit clusters, found in one pass; a
        # detector only runs on a cluster with enough digits for what it looks for.
        size = len(text)
        ssn_words: bool | None = None
        for cluster in _CLUSTER.finditer(text):
            run = cluster.group().rstrip()
            digits = _only_digits(run)
            count = len(digits)
            start = cluster.start()
            stop = min(size, start + len(run) + 2)  # lookaheads need two characters
            if count == len(run):  # bare digits: one candidate, the whole run
                if count < 8 or count > 19 or (start and _is_word_char(text[start - 1])):
                    continue  # too short or long for anything, or glued to a word
                if count == 9:
                    if ssn_words is None:
                        ssn_words = _has_ssn_word(text)
                    if ssn_words:
                        _ssns(text, start, stop, found)
                elif count >= 13:
                    _bare_card(text, start, run, found)
                if count <= 15:
                    self._phones(text, max(0, start - 2), stop, found)
                continue
            if count < 4:
                continue
            if run.count(".") >= 3:
                _ipv4(text, start, stop, found)
            if count < 8:
                continue
            if count >= 9:
                if ssn_words is None and "-" not in run:
                    ssn_words = _has_ssn_word(text)
                if "-" in run or ssn_words:
                    _ssns(text, start, stop, found)
                if count >= 13:
                    _cards(text, start, stop, found)
            self._phones(text, max(0, start - 2), stop, found)
        _ibans(text, found)
        return _resolve(found)

    def redact(self, text: str) -> Redaction:
        """``text`` with every entity replaced by its ``[TYPE]`` placeholder."""
        entities = self.find(text)
        parts: list[str] = []
        cursor = 0
        for entity in entities:
            parts.append(text[cursor : entity.start])
            parts.append(f"[{entity.type.value}]")
            cursor = entity.end
        parts.append(text[cursor:])
        return Redaction(text="".join(parts), entities=tuple(entities))

    def _phones(self, text: str, pos: int, endpos: int, found: list[Entity]) -> None:
        match = _PHONE.search(text, pos, endpos)
        while match is not None:
            candidate = match.group()
            start, end = match.start(), match.end()
            # Trim an unbalanced closing parenthesis the regex may have taken from the prose.
            while candidate.endswith(")") and candidate.count(")") > candidate.count("("):
                candidate = candidate[:-1].rstrip(" \t.-")
                end = start + len(candidate)
            if self._is_phone(text, start, candidate):
                found.append(Entity(EntityType.PHONE, start, end))
            else:
                # The regex is greedy: "<snowflake> 0151 2345678" is one match. Try again from
                # the next group, where a number that was swallowed may start.
                end = _next_group(text, start, end)
            match = _PHONE.search(text, end, endpos)

    def _is_phone(self, text: str, start: int, candidate: str) -> bool:
        digits = _only_digits(candidate).replace("+", "")
        if candidate.startswith(("+", "(+")):
            return 8 <= len(digits) <= 15 and _international_could_be(digits)
        dialled = digits.startswith("00")  # 0049 30 ...: international, dialled from Europe
        if not (10 <= len(digits) <= 17 if dialled else 9 <= len(digits) <= 12):
            return False
        if "." in candidate and any(len(part) < 2 for part in candidate.split(".")):
            return False  # 128.0.6099.109 is a browser version, not 128 0 6099 109
        if not candidate.isdigit() and _NOT_A_PHONE.match(candidate):
            return False  # a date, an IPv4 address, a decimal or SSN-shaped
        words = _words_before(text, start)
        label = _nearest(
            words, _PHONE_PREFIXES, _PHONE_WORDS, _REFERENCE_PREFIXES, _REFERENCE_WORDS
        )
        if label < 0:
            return False  # the nearest label says order/tracking/invoice/version/...
        bare = not any(char in _PHONE_SEPARATORS for char in candidate)
        if bare and label == 0 and not (len(digits) >= 10 and digits[0] == "0"):
            return False
        if _IBAN_BEFORE.search(text, max(0, start - _CONTEXT_WINDOW), start):
            return False  # the digits of an IBAN whose checksum failed
        if dialled:
            return _international_could_be(digits[2:])
        return self._plan.valid(digits)


def _only_digits(run: str) -> str:
    return (
        run.replace(" ", "")
        .replace("-", "")
        .replace(".", "")
        .replace("/", "")
        .replace("(", "")
        .replace(")", "")
        .replace("\t", "")
    )


def _is_word_char(char: str) -> bool:
    return char.isalnum() or char == "_"


def _has_ssn_word(text: str) -> bool:
    lowered = text.lower()
    return "ssn" in lowered or "social" in lowered or "ss#" in lowered


def _emails(text: str, found: list[Entity]) -> None:
    at = text.find("@")
    while at != -1:
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        if domain is not None:
            start = at
            floor = max(0, at - 128)
            while start > floor and (text[start - 1] in _LOCAL_CHARS or text[start - 1].isalnum()):
                start -= 1
            while start < at and text[start] in ".%-'":  # may not start a local part
                start += 1
            local = text[start:at]
            if local and ".." not in local and not local.endswith("."):
                found.append(Entity(EntityType.EMAIL, start, domain.end()))
        at = text.find("@", at + 1)


def _maybe_secret(text: str) -> bool:
    """A cheap test that lets most texts skip the secret patterns."""
    return (
        "_" in text
        or "sk-" in text
        or "xox" in text
        or "xapp-" in text
        or "eyJ" in text
        or "AKIA" in text
        or "ASIA" in text
        or "://" in text
        or "earer" in text
        or "EARER" in text
        or _DISCORD_HINT.search(text) is not None
    )


def _secrets(text: str, found: list[Entity]) -> None:
    for match in _SECRET.finditer(text):
        found.append(Entity(EntityType.SECRET, match.start(), match.end()))
    for match in _BEARER.finditer(text):
        token = match.group(1)
        # A token has a digit or mixed case; "Bearer authentication" has neither.
        if _DIGIT.search(token) is not None or (not token.islower() and not token.isupper()):
            found.append(Entity(EntityType.SECRET, match.start(1), match.end(1)))


def _ibans(text: str, found: list[Entity]) -> None:
    size = len(text)
    # Where two capitals and two digits meet, found with bytes.find on a letter/digit mask
    # (one byte per character, so offsets carry over); far cheaper than a regex scan.
    mask = text.encode("latin-1", "replace").translate(_IBAN_MASK)
    start = mask.find(b"AA00")
    while start != -1:
        at, start = start, mask.find(b"AA00", start + 1)
        if at and text[at - 1].isascii() and text[at - 1].isalnum():
            continue
        _iban_at(text, at, size, found)


def _iban_at(text: str, start: int, size: int, found: list[Entity]) -> None:
    length = _IBAN_LENGTHS.get(text[start : start + 2])
    if length is None:
        return
    # Either compact, or in groups of four split by single spaces (the print format).
    for span in (length, length + (length - 1) // 4):
        end = start + span
        if end > size or (end < size and text[end].isalnum()):
            continue
        written = text[start:end]
        compact = written.replace(" ", "") if span > length else written
        if span > length and any(written[i] != " " for i in range(4, span, 5)):
            continue
        if (
            len(compact) == length
            and compact.isascii()
            and compact.isalnum()
            and _iban_ok(compact.upper())
        ):
            found.append(Entity(EntityType.IBAN, start, end))
            return


def _next_group(text: str, start: int, end: int) -> int:
    """Where to look again after rejecting ``text[start:end]``.

    A greedy match can swallow a long number and the one after it ("<snowflake> 0151 2345678"),
    so when the first group has 7+ digits the search resumes at the second group. A shorter
    first group means one grouped number (a parcel or reference number) and is skipped whole:
    its slices are not cards or phones.
    """
    lead = _LEADING_GROUP.match(text, start, end)
    if lead is None or lead.end(1) - lead.start(1) < 7 or lead.end() >= end:
        return end
    return lead.end()


def _cards(text: str, pos: int, endpos: int, found: list[Entity]) -> None:
    match = _CARD.search(text, pos, endpos)
    while match is not None:
        run = match.group()
        base = match.start()
        groups: list[tuple[int, int, str]] = []  # (start, end, separator before)
        cursor = 0
        separator = ""
        for piece in _CARD_SEP.finditer(run):
            groups.append((cursor, piece.start(), separator))
            separator = piece.group()
            cursor = piece.end()
        groups.append((cursor, len(run), separator))
        span = _best_card_window(text, base, run, groups)
        if span is not None:
            found.append(Entity(EntityType.CARD, base + span[0], base + span[1]))
            resume = base + span[1]
        else:
            resume = _next_group(text, base, match.end())  # see _phones
        match = _CARD.search(text, resume, endpos)


def _bare_card(text: str, start: int, run: str, found: list[Entity]) -> None:
    """A card written as one run of 13-19 digits (the caller checked the left edge)."""
    end = start + len(run)
    if end < len(text) and (
        _is_word_char(text[end])
        or (text[end] in ".," and end + 1 < len(text) and text[end + 1].isdigit())
    ):
        return
    if start and text[start - 1] in _CARD_NOT_AFTER:
        return
    if len(run) >= 17 and _nearest(_words_before(text, start), _CARD_PREFIXES, _CARD_WORDS) <= 0:
        return  # a bare 17+ digit run is a Discord snowflake unless called a card
    if _card_network_ok(run) and _luhn_ok(run):
        found.append(Entity(EntityType.CARD, start, end))


def _ssns(text: str, pos: int, endpos: int, found: list[Entity]) -> None:
    for match in _SSN.finditer(text, pos, endpos):
        area, separator, group, serial = match.groups()
        if area in {"000", "666"} or area[0] == "9" or group == "00" or serial == "0000":
            continue
        words = _words_before(text, match.start())
        if _nearest(words, _SSN_PREFIXES, _NO_WORDS) <= 0 and (
            separator != "-" or _nearest(words[-3:], _REFERENCE_PREFIXES, _REFERENCE_WORDS) > 0
        ):
            continue  # undashed needs "SSN" before it; dashed must not follow "order" etc.
        found.append(Entity(EntityType.SSN, match.start(), match.end()))


def _ipv4(text: str, pos: int, endpos: int, found: list[Entity]) -> None:
    for match in _IPV4.finditer(text, pos, endpos):
        address = match.group()
        # Octets 0-255 without leading zeros, checked before ipaddress to skip its exception.
        if any(
            int(part) > 255 or (len(part) > 1 and part[0] == "0") for part in address.split(".")
        ):
            continue
        if _after_version_word(_words_before(text, match.start())):
            continue
        try:
            ipaddress.IPv4Address(address)
        except ValueError:
            continue
        found.append(Entity(EntityType.IP, match.start(), match.end()))


def _after_version_word(raw_words: list[str]) -> bool:
    """Whether the words end like "version", "v", "build", "upgraded to", "Chrome", ..."""
    words = [word.strip(_PUNCTUATION) for word in raw_words[-2:]]
    if words and words[-1] in {"to", "auf", "à", "a", "para", "naar"} and len(words) > 1:
        return words[-2].startswith(_UPDATE_PREFIXES)
    return bool(words) and (words[-1] in _VERSION_WORDS or words[-1].startswith(_VERSION_PREFIXES))


def _ipv6(text: str, found: list[Entity]) -> None:
    done = -1
    for pair in _COLON_PAIR.finditer(text):
        start = pair.start()
        if start < done:
            continue
        while start > 0 and text[start - 1] in _IPV6_CHARS:
            start -= 1
        match = _IPV6.match(text, start)
        if match is None:
            continue
        done = match.end()
        raw = match.group()
        if done < len(text) and (text[done].isalnum() or text[done] == "_"):
            continue
        for candidate in dict.fromkeys((raw, raw.rstrip("."), raw.rstrip(".:"))):
            # A valid address has "::" or all eight groups (seven colons, six before a v4 tail).
            colons = candidate.count(":")
            if "::" not in candidate and colons < 7 and not (colons == 6 and "." in candidate):
                continue
            try:
                ipaddress.IPv6Address(candidate)
            except ValueError:
                continue
            found.append(Entity(EntityType.IP, start, start + len(candidate)))
            break


def _best_card_window(
    text: str, base: int, run: str, groups: list[tuple[int, int, str]]
) -> tuple[int, int] | None:
    """The longest tail of ``run``'s digit groups that is a card, as offsets into ``run``."""
    count = len(groups)
    # Windows run to the last group (a grouped number with more after it is not a card) and may
    # drop leading groups ("qty 2 4111 1111 1111 1111"); the longest is tried first.
    windows: list[tuple[int, int, int]] = []  # (-digits, first group, last group + 1)
    digits = 0
    for first in range(count - 1, -1, -1):
        digits += groups[first][1] - groups[first][0]
        if digits > 19:
            break
        if digits >= 13:
            windows.append((-digits, first, count))
    windows.sort()
    sizes = [end - start for start, end, _sep in groups]
    for _neg, first, stop in windows:
        if stop - first > 1:
            separators = {groups[index][2] for index in range(first + 1, stop)}
            if len(separators) > 1 or not _card_grouping_ok(sizes[first:stop]):
                continue
            if first > 0 and sizes[first - 1] == 4:
                continue  # the tail of a longer grouped number (parcel or bank reference)
        lo, hi = groups[first][0], groups[stop - 1][1]
        digits_text = run[lo:hi].replace(" ", "").replace("-", "")
        if (
            stop - first == 1
            and len(digits_text) >= 17
            and _nearest(_words_before(text, base + lo), _CARD_PREFIXES, _CARD_WORDS) <= 0
        ):
            continue  # a bare 17+ digit run is a Discord snowflake unless called a card
        if (
            _card_network_ok(digits_text)
            and _luhn_ok(digits_text)
            and not _IBAN_BEFORE.search(text, max(0, base + lo - _CONTEXT_WINDOW), base + lo)
        ):
            return lo, hi
    return None


def _card_grouping_ok(sizes: list[int]) -> bool:
    """4-4-4-4 style (the last group may be short), or Amex/Diners 4-6-5 and 4-6-4."""
    if sizes in ([4, 6, 5], [4, 6, 4]):
        return True
    return all(size == 4 for size in sizes[:-1]) and 1 <= sizes[-1] <= 4


def _resolve(found: list[Entity]) -> list[Entity]:
    """Keep one entity per overlapping cluster: longest first, then the most specific type."""
    if len(found) < 2:
        return found
    ordered = sorted(found, key=lambda e: (e.start - e.end, _RANK[e.type], e.start))
    kept: list[Entity] = []
    for entity in ordered:
        if all(entity.end <= other.start or entity.start >= other.end for other in kept):
            kept.append(entity)
    kept.sort(key=lambda e: e.start)
    return kept


@cache
def _default_redactor() -> Redactor:
    return Redactor()


def redact(text: str) -> str:
    """``text`` with PII and secrets replaced by placeholders, using the default regions."""
    return _default_redactor().redact(text).text
