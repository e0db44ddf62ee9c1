"""Write ``redact_corpus.jsonl``: labelled support-ticket texts for ``thothbot.core.redact``.

Run from the repository root: ``.venv/bin/python tests/data/make_redact_corpus.py``. The output
is deterministic for a given seed and ``phonenumbers`` metadata. Each line is
``{"text": ..., "entities": [{"type": ..., "start": ..., "end": ...}]}``; the offsets come
from the generator itself, so they are exact. Valid values are built, not copied: card numbers
get a computed Luhn digit, IBANs computed mod-97 check digits, phone numbers start from
``phonenumbers.example_number_for_type`` and have their subscriber digits varied until
``phonenumbers`` calls them valid again. The tricky negatives (order numbers, prices, dates,
versions, UUIDs, hashes, snowflakes, tracking numbers, postcodes, Luhn-invalid or network-less
card-like numbers, bad-checksum IBANs, four-part versions, ...) are sprinkled through the
positive texts too, and 300+ texts hold nothing but negatives.
"""

from __future__ import annotations

import base64
import ipaddress
import json
import random
import re
import string
import sys
from collections.abc import Callable
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

SEED = 20261123
OUT = Path(__file__).with_name("redact_corpus.jsonl")
REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "BR")
LANGS = ("en", "en", "en", "en", "de", "fr", "es", "pt")

rng = random.Random(SEED)

Value = tuple[str, str | None]  # (text, entity type or None for an unlabelled distractor)


# --- small helpers ----------------------------------------------------------------------------


def digits(count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def alnum(count: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def luhn_digit(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char)
        if index % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def group(number: str, sizes: list[int], sep: str) -> str:
    parts, pos = [], 0
    for size in sizes:
        parts.append(number[pos : pos + size])
        pos += size
    if pos < len(number):
        parts.append(number[pos:])
    return sep.join(part for part in parts if part)


# --- e-mail -----------------------------------------------------------------------------------

FIRST = [
    "jane", "john", "maria", "lukas", "chloe", "sofia", "pedro", "ana", "liam", "emma",
    "noah", "mia", "lucas", "ines", "hugo", "lea", "mateo", "julia", "arjun", "priya",
    "tom", "sarah", "felix", "camille", "diego", "beatriz", "oliver", "hannah", "raj", "yuki",
]  # fmt: skip
LAST = [
    "doe", "smith", "mueller", "schmidt", "dubois", "martin", "garcia", "lopez", "silva",
    "santos", "rossi", "jansen", "patel", "sharma", "oliveira", "fischer", "bernard", "moreau",
    "fernandez", "costa", "brown", "wilson", "kowalski", "nguyen", "tanaka",
]  # fmt: skip
DOMAINS = [
    "gmail.com", "outlook.com", "yahoo.co.uk", "web.de", "gmx.de", "orange.fr", "free.fr",
    "hotmail.es", "uol.com.br", "icloud.com", "proton.me", "example.com", "acme-corp.io",
    "mail.example.org", "company.co.in", "libero.it", "ziggo.nl", "t-online.de", "bol.com.br",
]  # fmt: skip


def email() -> str:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    local = rng.choice(
        [
            f"{first}.{last}",
            f"{first}{last}",
            f"{first}_{last}{rng.randint(1, 99)}",
            f"{first[0]}.{last}",
            f"{first}+shop",
            f"{first}.{last}+{rng.choice(['orders', 'discord', 'news'])}",
            f"{last}{rng.randint(1970, 2005)}",
            f"{first}-{last}",
        ]
    )
    value = f"{local}@{rng.choice(DOMAINS)}"
    return value.upper() if rng.random() < 0.05 else value


# --- phones -----------------------------------------------------------------------------------


def phone_number(region: str) -> phonenumbers.PhoneNumber:
    kind = rng.choice([PhoneNumberType.FIXED_LINE, PhoneNumberType.MOBILE])
    example = phonenumbers.example_number_for_type(region, kind)
    assert example is not None
    national = str(example.national_number)
    keep = max(2, len(national) - rng.randint(4, 6))
    for _ in range(1000):
        candidate = national[:keep] + digits(len(national) - keep)
        number = phonenumbers.PhoneNumber(
            country_code=example.country_code,
            national_number=int(candidate),
            italian_leading_zero=example.italian_leading_zero,
        )
        if (
            phonenumbers.is_valid_number(number)
            and phonenumbers.region_code_for_number(number) == region
        ):
            return number
    raise AssertionError(f"no valid variation of {region} {national}")


def phone_text(region: str, *, bare_ok: bool) -> str:
    number = phone_number(region)
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
    nat_digits = re.sub(r"\D", "", national)
    styles: list[str] = [national, national, intl, intl, e164]
    if region == "US":
        styles += [
            f"{nat_digits[:3]}-{nat_digits[3:6]}-{nat_digits[6:]}",
            f"{nat_digits[:3]}.{nat_digits[3:6]}.{nat_digits[6:]}",
            f"+1 ({nat_digits[:3]}) {nat_digits[3:6]}-{nat_digits[6:]}",
            f"1-{nat_digits[:3]}-{nat_digits[3:6]}-{nat_digits[6:]}",
        ]
    elif region == "FR":
        styles += [national.replace(" ", "."), national.replace(" ", "-")]
    elif region in {"GB", "DE"}:
        cc = str(number.country_code)
        styles += [f"+{cc} (0){intl[len(cc) + 2 :]}", "00" + e164[1:]]
        styles += [national.replace(" ", "/", 1)] if region == "DE" else []
    elif region == "BR":
        styles += [national.replace("(", "").replace(")", "")]
    elif region == "IN":
        styles += [f"+91-{nat_digits[1:6]}-{nat_digits[6:]}", f"+91 {nat_digits[1:]}"]
    if bare_ok and (nat_digits[0] == "0" or region in {"US", "ES", "IT", "BR"}):
        styles += [nat_digits]
    return rng.choice(styles)


# --- cards ------------------------------------------------------------------------------------

CARD_NETWORKS: list[tuple[str, Callable[[], str], list[int]]] = [
    ("visa", lambda: "4", [16, 16, 16, 13, 19]),
    ("mastercard", lambda: str(rng.randint(51, 55)), [16]),
    ("mastercard2", lambda: str(rng.randint(2221, 2720)), [16]),
    ("amex", lambda: rng.choice(["34", "37"]), [15]),
    ("discover", lambda: rng.choice(["6011", "65", str(rng.randint(644, 649))]), [16]),
    ("jcb", lambda: str(rng.randint(3528, 3589)), [16]),
    ("diners", lambda: rng.choice(["36", str(rng.randint(300, 305)), "38"]), [14, 16]),
    ("unionpay", lambda: "62" + str(rng.randint(0, 9)), [16, 16, 17, 19]),
    ("maestro", lambda: rng.choice(["6759", "5018", "6304"]), [16, 19]),
]


def card_number(network: int | None = None) -> tuple[str, str]:
    name, prefix_of, lengths = CARD_NETWORKS[
        rng.randrange(len(CARD_NETWORKS)) if network is None else network
    ]
    prefix = prefix_of()
    length = rng.choice(lengths)
    if name == "diners" and prefix == "36":
        length = 14
    if name == "diners" and prefix == "38":
        length = 16
    body = prefix + digits(length - len(prefix) - 1)
    return name, body + luhn_digit(body)


def card_text(number: str, name: str, *, bare_ok: bool = True) -> str:
    length = len(number)
    sep = rng.choice([" ", " ", "-"])
    if name == "amex":
        options = [group(number, [4, 6, 5], sep), number]
    elif length == 14:
        options = [group(number, [4, 6, 4], sep), number]
    elif length >= 17:
        # Long cards are written in groups; a bare 17+ digit run reads as a Discord snowflake.
        options = [group(number, [4, 4, 4, 4], sep)]
    else:
        options = [group(number, [4, 4, 4, 4], sep), group(number, [4, 4, 4, 4], sep), number]
    if not bare_ok:
        options = options[:1]
    return rng.choice(options)


# --- IBAN -------------------------------------------------------------------------------------

IBAN_SPECS: dict[str, str] = {
    "DE": "18n", "GB": "4a14n", "FR": "10n11c2n", "ES": "20n", "IT": "1a10n12c", "NL": "4a10n",
    "BE": "12n", "AT": "16n", "CH": "5n12c", "PT": "21n", "PL": "24n", "IE": "4a14n",
    "SE": "20n", "DK": "14n", "FI": "14n", "NO": "11n", "LU": "3n13c", "BR": "23n1a1c",
}  # fmt: skip


def bban(spec: str) -> str:
    out = []
    for count, kind in re.findall(r"(\d+)([nac])", spec):
        alphabet = {
            "n": string.digits,
            "a": string.ascii_uppercase,
            "c": string.ascii_uppercase + string.digits,
        }[kind]
        out.append("".join(rng.choice(alphabet) for _ in range(int(count))))
    return "".join(out)


def iban_check(country: str, body: str) -> str:
    number = "".join(str(int(char, 36)) for char in body + country + "00")
    return f"{98 - int(number) % 97:02d}"


def iban_compact(country: str | None = None) -> str:
    country = country or rng.choice(list(IBAN_SPECS))
    body = bban(IBAN_SPECS[country])
    return country + iban_check(country, body) + body


def iban_format(compact: str) -> str:
    if rng.random() < 0.6:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def bad_iban() -> str:
    compact = iban_compact()
    wrong = compact[2:4]
    while wrong == compact[2:4]:
        wrong = f"{rng.randint(2, 98):02d}"
    return iban_format(compact[:2] + wrong + compact[4:])


# --- IPs, SSNs --------------------------------------------------------------------------------


def ipv4() -> str:
    kind = rng.random()
    if kind < 0.25:
        return f"192.168.{rng.randint(0, 20)}.{rng.randint(2, 254)}"
    if kind < 0.35:
        return f"10.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"
    first = rng.choice([23, 31, 45, 62, 77, 81, 85, 91, 104, 151, 178, 185, 189, 201, 203])
    return f"{first}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def ipv6() -> str:
    kind = rng.random()
    if kind < 0.25:
        address = ipaddress.IPv6Address(
            (0xFE80 << 112) | rng.getrandbits(64),
        )
    elif kind < 0.4:
        address = ipaddress.IPv6Address((0x20010DB8 << 96) | rng.getrandbits(16))
    else:
        prefix = rng.choice([0x2A02, 0x2001, 0x2600, 0x2804, 0x2A01, 0x2409])
        address = ipaddress.IPv6Address((prefix << 112) | rng.getrandbits(112))
        if rng.random() < 0.3:
            address = ipaddress.IPv6Address(int(address) & ~((1 << 64) - 1) | rng.getrandbits(8))
    text = address.compressed if rng.random() < 0.85 else address.exploded
    return text.upper() if rng.random() < 0.1 else text


def ssn(*, dashed: bool = True) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    value = f"{area:03d}", f"{rng.randint(1, 99):02d}", f"{rng.randint(1, 9999):04d}"
    if dashed:
        return "-".join(value)
    return rng.choice([" ".join(value), "".join(value)])


# --- secrets ----------------------------------------------------------------------------------

B64URL = string.ascii_letters + string.digits + "-_"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def snowflake() -> int:
    ms = rng.randint(40_000_000_000, 370_000_000_000)  # 2016 .. 2026 since the Discord epoch
    return (ms << 22) | rng.getrandbits(22)


def discord_token() -> str:
    head = b64url(str(snowflake()).encode())
    return f"{head}.{alnum(6, B64URL)}.{alnum(rng.choice([27, 38]), B64URL)}"


def jwt() -> str:
    header = b64url(json.dumps({"alg": rng.choice(["HS256", "RS256"]), "typ": "JWT"}).encode())
    claims: dict[str, object] = {"sub": str(rng.randint(1000, 99999))}
    claims["name"] = rng.choice(FIRST).title()
    claims["iat"] = rng.randint(1_700_000_000, 1_800_000_000)
    payload = b64url(json.dumps(claims).encode())
    return f"{header}.{payload}.{b64url(rng.randbytes(32))}"


AN = string.ascii_letters + string.digits
SECRET_KINDS: list[Callable[[], str]] = [
    discord_token,
    lambda: "sk-" + alnum(48, AN),
    lambda: "sk-proj-" + alnum(rng.choice([48, 64, 92]), AN + "_-"),
    lambda: rng.choice(["ghp_", "gho_", "ghu_", "ghs_", "ghr_"]) + alnum(36, AN),
    lambda: "github_pat_" + alnum(22, AN) + "_" + alnum(59, AN),
    lambda: f"{rng.choice(['xoxb', 'xoxp', 'xoxa'])}-{digits(12)}-{digits(13)}-{alnum(24, AN)}",
    lambda: (
        f"xapp-1-A{alnum(10, string.ascii_uppercase + string.digits)}-{digits(13)}-"
        + alnum(64, "0123456789abcdef")
    ),
    lambda: (
        f"https://hooks.slack.com/services/T{alnum(8, string.ascii_uppercase)}"
        f"/B{alnum(10, string.ascii_uppercase)}/{alnum(24, AN)}"
    ),
    lambda: f"https://discord.com/api/webhooks/{snowflake()}/{alnum(68, AN + '_-')}",
    lambda: rng.choice(["sk_live_", "sk_test_", "rk_live_", "pk_live_"]) + alnum(24, AN),
    lambda: rng.choice(["AKIA", "ASIA"]) + alnum(16, string.ascii_uppercase + "234567"),
    jwt,
]


def secret() -> str:
    return rng.choice(SECRET_KINDS)()


def bearer_token() -> str:
    return rng.choice([alnum(40, AN + "-._"), jwt(), "at_" + alnum(32, AN)])


# --- distractors (never labelled) -------------------------------------------------------------


def order_ref() -> str:
    return rng.choice(
        [
            f"ORD-2026-{rng.randint(1, 999999):06d}",
            f"INV-{rng.randint(10000, 99999)}",
            f"#{rng.randint(10000, 99999)}",
            f"A-{digits(6)}",
            f"PO-{digits(5)}",
            f"{digits(3)}-{digits(7)}-{digits(7)}",
            f"SO{digits(8)}",
            f"{rng.randint(10000, 99999999)}",
        ]
    )


def price() -> str:
    return rng.choice(
        [
            f"€{rng.randint(5, 999)}.{rng.randint(0, 99):02d}",
            f"${rng.randint(1, 9)},{rng.randint(100, 999)}.{rng.randint(0, 99):02d}",
            f"£{rng.randint(5, 300)}.99",
            f"R$ {rng.randint(1, 9)}.{rng.randint(100, 999)},{rng.randint(0, 99):02d}",
            f"{rng.randint(1, 9)}.{rng.randint(100, 999)},00 €",
            f"USD {rng.randint(1, 99)},{rng.randint(100, 999)}",
            f"₹{rng.randint(1, 99)},{rng.randint(100, 999)}",
            f"{rng.randint(10, 999)},{rng.randint(0, 99):02d} EUR",
        ]
    )


def date() -> str:
    day, month = rng.randint(1, 28), rng.randint(1, 12)
    year = rng.choice([2025, 2026])
    hour, minute = rng.randint(0, 23), rng.randint(0, 59)
    return rng.choice(
        [
            f"{year}-{month:02d}-{day:02d}",
            f"{day:02d}/{month:02d}/{year}",
            f"{month}/{day}/{year}",
            f"{day:02d}.{month:02d}.{year}",
            f"{day:02d}.{month:02d}.{year} {hour:02d}:{minute:02d}",
            f"{year}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{rng.randint(0, 59):02d}Z",
            f"{hour:02d}:{minute:02d}",
            f"{year}-{month:02d}-{day:02d} {hour:02d}:{minute:02d}:{rng.randint(0, 59):02d}",
        ]
    )


def version() -> str:
    a, b, c, d = rng.randint(1, 12), rng.randint(0, 30), rng.randint(0, 20), rng.randint(0, 99)
    return rng.choice(
        [
            f"v{a}.{b}.{c}",
            f"version {a}.{b}.{c}.{d}",
            f"{a}.{b}.{c}",
            f"build 10.0.{rng.randint(19041, 22631)}.{rng.randint(1000, 4000)}",
            f"v{a}.{b}.{c}.{d}",
            f"firmware {a}.{b}.{c}.{d}",
            f"Chrome {rng.randint(110, 131)}.0.{rng.randint(5000, 6999)}.{rng.randint(10, 200)}",
            f"app version {a}.{b}.{c}.{d}",
            f"Version {a}.{b}.{c}.{d}",
            f"iOS {rng.randint(15, 18)}.{rng.randint(0, 6)}.{rng.randint(1, 3)}",
        ]
    )


def uuid() -> str:
    hexed = f"{rng.getrandbits(128):032x}"
    return f"{hexed[:8]}-{hexed[8:12]}-4{hexed[13:16]}-a{hexed[17:20]}-{hexed[20:]}"


def hexhash() -> str:
    return f"{rng.getrandbits(4 * 64):064x}"[: rng.choice([7, 12, 32, 40, 64])]


def snowflake_text() -> str:
    value = snowflake()
    return rng.choice(
        [
            str(value),
            f"<@{value}>",
            f"<#{value}>",
            f"<@&{value}>",
            f"https://discord.com/channels/{snowflake()}/{snowflake()}/{value}",
        ]
    )


def ticket_ref() -> str:
    number = rng.randint(1, 9999)
    return rng.choice([f"ticket-{number:04d}", f"#{number:04d}", f"Ticket #{number}"])


def tracking() -> str:
    return rng.choice(
        [
            "1Z" + alnum(6, string.ascii_uppercase + string.digits) + digits(10),
            "9400 " + " ".join(digits(4) for _ in range(4)) + " " + digits(2),
            "94001" + digits(17),
            digits(12),
            f"{digits(4)} {digits(4)} {digits(4)}",
            f"JJD{digits(18)}",
            f"{rng.choice(['RR', 'LX', 'CP', 'AB'])}{digits(9)}{rng.choice(['GB', 'DE', 'BR'])}",
        ]
    )


def postcode() -> str:
    return rng.choice(
        [
            "SW1A 1AA",
            f"{rng.randint(10115, 14199)} Berlin",
            f"750{rng.randint(1, 20):02d} Paris",
            f"280{rng.randint(1, 55):02d} Madrid",
            f"0{rng.randint(1000, 9999)}-{digits(3)} São Paulo",
            f"{rng.randint(110001, 560100)}",
            f"{rng.randint(10001, 99950)}",
            f"10{rng.randint(11, 99)} {rng.choice(['AB', 'KL', 'XZ'])} Amsterdam",
        ]
    )


def bad_card() -> str:
    _, number = card_number()
    wrong = number[:-1] + str((int(number[-1]) + rng.randint(1, 9)) % 10)
    return group(wrong, [4, 4, 4, 4], rng.choice([" ", "-"])) if rng.random() < 0.6 else wrong


def networkless_card() -> str:
    body = rng.choice("0179") + digits(14)
    while body.startswith(("9792", "9860")):
        body = rng.choice("0179") + digits(14)
    number = body + luhn_digit(body)
    return group(number, [4, 4, 4, 4], " ") if rng.random() < 0.5 else number


def bad_ssn() -> str:
    """SSN-shaped but in a range the SSA never issues."""
    area, group_, serial = f"{rng.randint(1, 665):03d}", f"{rng.randint(1, 99):02d}", digits(4)
    flaw = rng.randrange(4)
    if flaw == 0:
        area = rng.choice(["000", "666", f"9{rng.randint(0, 99):02d}"])
    elif flaw == 1:
        group_ = "00"
    elif flaw == 2:
        serial = "0000"
    else:
        area = f"9{rng.randint(0, 99):02d}"
    return f"{area}-{group_}-{serial}"


def imei() -> str:
    body = rng.choice(["35", "86", "01"]) + digits(12)
    return body + luhn_digit(body)


DISTRACTORS: dict[str, Callable[[], str]] = {
    "order": order_ref,
    "price": price,
    "date": date,
    "version": version,
    "uuid": uuid,
    "hash": hexhash,
    "snowflake": snowflake_text,
    "ticket": ticket_ref,
    "tracking": tracking,
    "postcode": postcode,
    "badcard": bad_card,
    "nocard": networkless_card,
    "badiban": bad_iban,
    "imei": imei,
    "badssn": bad_ssn,
    "ver4": lambda: (
        f"{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}"
    ),
    "time": lambda: f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}",
    "mac": lambda: ":".join(f"{rng.getrandbits(8):02X}" for _ in range(6)),
    "qty": lambda: str(rng.randint(2, 12)),
    "amount": lambda: f"{rng.randint(1, 999)},{rng.randint(100, 999)},{rng.randint(100, 999)}",
    "user": lambda: rng.choice(["@everyone", "@here", "@Moderators", "@thoth_support"]),
    "sortcode": lambda: f"{digits(2)}-{digits(2)}-{digits(2)}",
    "acct": lambda: digits(8),
    "port": lambda: str(rng.choice([443, 8080, 3000, 5432, 6379])),
}


# --- templates --------------------------------------------------------------------------------

# Slots: {EMAIL} {PHONE} (any format: a phone word precedes it) {PHONE_F} (formatted or
# international only) {CARD} {IBAN} {IP4} {IP6} {SSN} {SSN_CTX} (spaced/undashed, SSN word
# precedes it) {SECRET} {BEARER}; lower-case slots are unlabelled distractors.

OPEN: dict[str, list[str]] = {
    "en": ["Hi,", "Hello team,", "Hey there,", "Hi support,", "Good morning,", ""],
    "de": ["Hallo,", "Guten Tag,", "Hallo zusammen,", "Moin,", ""],
    "fr": ["Bonjour,", "Salut,", "Bonjour à tous,", ""],
    "es": ["Hola,", "Buenas tardes,", "Hola equipo,", ""],
    "pt": ["Olá,", "Oi pessoal,", "Bom dia,", ""],
}
CLOSE: dict[str, list[str]] = {
    "en": ["Thanks!", "Thanks in advance.", "Cheers.", "Regards, {name}", "Any update?", ""],
    "de": ["Danke!", "Viele Grüße, {name}", "Vielen Dank im Voraus.", ""],
    "fr": ["Merci !", "Cordialement, {name}", "Merci d'avance.", ""],
    "es": ["¡Gracias!", "Saludos, {name}", "Gracias de antemano.", ""],
    "pt": ["Obrigado!", "Abraços, {name}", "Desde já agradeço.", ""],
}
FILLER: dict[str, list[str]] = {
    "en": [
        "My order {order} placed on {date} for {price} still hasn't arrived.",
        "I'm on {version} of the app and it crashes at {date}.",
        "This is about {ticket}, which was closed without an answer.",
        "The tracking number {tracking} shows no movement since {date}.",
        "My Discord user id is {snowflake} if that helps.",
        "Request id {uuid}, commit {hash}.",
        "I was charged {price} twice on {date}.",
        "Shipping address postcode is {postcode}.",
        "The bot says error {order} when I run /ticket.",
        "I bought {qty} items, invoice {order}.",
        "It worked fine until the update to {version}.",
        "Message link: {snowflake} (see above).",
        "Order {order} was refunded {price} but I only see part of it.",
    ],
    "de": [
        "Meine Bestellung {order} vom {date} über {price} ist noch nicht angekommen.",
        "Ich nutze {version} und die App stürzt ab.",
        "Es geht um {ticket}, das ohne Antwort geschlossen wurde.",
        "Die Sendungsnummer {tracking} zeigt seit {date} nichts Neues.",
        "Rechnung {order}, Betrag {price}.",
        "Lieferadresse: Hauptstraße 5, {postcode}.",
    ],
    "fr": [
        "Ma commande {order} du {date} pour {price} n'est toujours pas arrivée.",
        "J'utilise la {version} et l'appli plante.",
        "C'est au sujet du {ticket}, fermé sans réponse.",
        "Le numéro de suivi {tracking} ne bouge plus depuis le {date}.",
        "Facture {order}, montant {price}.",
        "Adresse de livraison : 12 rue de la Paix, {postcode}.",
    ],
    "es": [
        "Mi pedido {order} del {date} por {price} todavía no ha llegado.",
        "Uso la {version} y la app se cierra sola.",
        "Es sobre el {ticket}, que se cerró sin respuesta.",
        "El número de seguimiento {tracking} no se mueve desde el {date}.",
        "Factura {order}, importe {price}.",
        "Código postal de entrega: {postcode}.",
    ],
    "pt": [
        "Meu pedido {order} de {date} no valor de {price} ainda não chegou.",
        "Estou na {version} e o app fecha sozinho.",
        "É sobre o {ticket}, que foi fechado sem resposta.",
        "O código de rastreio {tracking} não atualiza desde {date}.",
        "Fatura {order}, valor {price}.",
        "CEP de entrega: {postcode}.",
    ],
}

POSITIVE: dict[str, dict[str, list[str]]] = {
    "EMAIL": {
        "en": [
            "Please reply to {EMAIL} instead of my Discord DMs.",
            "My account email is {EMAIL} and I can't log in since {date}.",
            "Can you send the invoice {order} to {EMAIL}? My old address is closed.",
            "Contact: {EMAIL} (work) — please don't use {user}.",
            "I registered with <{EMAIL}> but the bot says unknown user.",
            "Send the receipt to mailto:{EMAIL} please.",
            "{EMAIL} is the address on the order {order}.",
            "Change my login from {EMAIL} to {EMAIL}, thanks.",
        ],
        "de": [
            "Bitte antworten Sie an {EMAIL}, nicht per DM.",
            "Meine E-Mail-Adresse lautet {EMAIL}.",
            "Schicken Sie die Rechnung {order} bitte an {EMAIL}.",
        ],
        "fr": [
            "Merci de répondre à {EMAIL} plutôt qu'en MP.",
            "Mon adresse e-mail est {EMAIL}.",
        ],
        "es": [
            "Por favor respondan a {EMAIL}, no por mensaje directo.",
            "Mi correo es {EMAIL} y no puedo entrar.",
        ],
        "pt": [
            "Por favor respondam para {EMAIL}.",
            "Meu e-mail de cadastro é {EMAIL}.",
        ],
    },
    "PHONE": {
        "en": [
            "You can call me on {PHONE} any time after 5pm.",
            "Please phone me at {PHONE}, I can't type well on mobile.",
            "My mobile number is {PHONE} if the chat drops again.",
            "Reach me on WhatsApp: {PHONE}.",
            "Callback number {PHONE}, ask for the billing contact.",
            "{PHONE_F} is the best number to reach me.",
            "I tried calling {PHONE_F} from your website but nobody answered.",
            "Our office line ({PHONE_F}) is staffed 9-5.",
            "Text me at {PHONE} when the replacement ships.",
            "Tel: {PHONE} / email works too.",
        ],
        "de": [
            "Sie erreichen mich telefonisch unter {PHONE}.",
            "Meine Handynummer ist {PHONE}.",
            "Rückruf bitte an {PHONE_F}, ab 17 Uhr.",
            "Tel.: {PHONE}.",
        ],
        "fr": [
            "Vous pouvez me joindre au {PHONE}.",
            "Mon portable : {PHONE}.",
            "Merci de me rappeler au {PHONE_F} après 18h.",
        ],
        "es": [
            "Pueden llamarme al {PHONE}.",
            "Mi móvil es el {PHONE}.",
            "Mi teléfono: {PHONE}, a partir de las 17h.",
        ],
        "pt": [
            "Podem me ligar no {PHONE}.",
            "Meu celular é {PHONE}.",
            "Telefone para contato: {PHONE}.",
        ],
    },
    "CARD": {
        "en": [
            "My card {CARD} was charged twice for order {order}.",
            "I paid with {CARD} but the bot says payment failed.",
            "Refund should go back to the Visa {CARD}, not store credit.",
            "Card number: {CARD}, expiry 09/28.",
            "The charge of {price} on {CARD} is not mine!",
            "{CARD} — this is the card that got declined at checkout.",
            "I used the company credit card {CARD} by mistake.",
        ],
        "de": [
            "Meine Karte {CARD} wurde zweimal belastet.",
            "Ich habe mit der Kreditkarte {CARD} bezahlt.",
        ],
        "fr": ["Ma carte {CARD} a été débitée deux fois.", "J'ai payé avec la carte {CARD}."],
        "es": ["Mi tarjeta {CARD} fue cobrada dos veces.", "Pagué con la tarjeta {CARD}."],
        "pt": ["Meu cartão {CARD} foi cobrado duas vezes.", "Paguei com o cartão {CARD}."],
    },
    "IBAN": {
        "en": [
            "Please refund to my IBAN {IBAN}.",
            "Bank details for the refund: {IBAN} (name as on the order).",
            "The SEPA transfer came from {IBAN}, reference {order}.",
            "{IBAN} is my account, please send the {price} there.",
        ],
        "de": [
            "Bitte überweisen Sie die Erstattung auf {IBAN}.",
            "Meine IBAN lautet {IBAN}.",
        ],
        "fr": ["Merci de rembourser sur l'IBAN {IBAN}.", "Mon RIB : {IBAN}."],
        "es": ["Por favor devuelvan el dinero a {IBAN}.", "Mi IBAN es {IBAN}."],
        "pt": ["Por favor façam o reembolso para o IBAN {IBAN}.", "Meu IBAN: {IBAN}."],
    },
    "IP": {
        "en": [
            "I'm being blocked from {IP4} since the last update.",
            "My IP address is {IP4}, please whitelist it.",
            "The dashboard at http://{IP4}:{port}/ stopped loading.",
            "Login attempts came from {IP4} and {IP6}, not me!",
            "Our IPv6 is {IP6} and the webhook never fires.",
            "Rate limited from {IP6} even though I sent one request.",
            "The bot connects from {IP4} after upgrading to {version}.",
            "ping {IP4} works but the panel at [{IP6}]:{port} does not.",
        ],
        "de": ["Meine IP-Adresse ist {IP4}.", "Ich werde von {IP6} aus blockiert."],
        "fr": ["Mon adresse IP est {IP4}.", "Je suis bloqué depuis {IP6}."],
        "es": ["Mi dirección IP es {IP4}.", "Me bloquean desde {IP6}."],
        "pt": ["Meu IP é {IP4}.", "Estou bloqueado a partir de {IP6}."],
    },
    "SSN": {
        "en": [
            "For the tax form you asked for my SSN: {SSN}.",
            "The W-9 has {SSN} on it, please delete it after.",
            "My social security number is {SSN_CTX} (sorry if I shouldn't post this).",
            "SSN {SSN_CTX} — needed for the payout verification.",
            "Verification failed for {SSN}, is the format wrong?",
            "Here is the applicant info: {SSN}, DOB on file.",
        ],
    },
    "SECRET": {
        "en": [
            "I accidentally pasted my token: {SECRET} please help me revoke it.",
            "Here is my config: TOKEN={SECRET} and it still fails.",
            "The bot logs show key {SECRET} in plain text!",
            "export API_KEY={SECRET} # from .env",
            "Is it safe that {SECRET} appears in the error message?",
            "curl -H 'Authorization: Bearer {BEARER}' https://api.example.com/v1/orders",
            "Authorization: Bearer {BEARER}",
            "My webhook/secret is {SECRET} — the integration stopped on {date}.",
        ],
        "de": ["Ich habe aus Versehen meinen Schlüssel gepostet: {SECRET}"],
        "fr": ["J'ai collé ma clé par erreur : {SECRET}"],
        "es": ["Pegué mi clave por error: {SECRET}"],
        "pt": ["Colei minha chave sem querer: {SECRET}"],
    },
}

NEGATIVE: dict[str, list[str]] = {
    "en": [
        "Order {order} placed on {date} for {price} still hasn't arrived.",
        "The bot crashed on {version} at {time}, request id {uuid}.",
        "Commit {hash} broke the ticket panel, see {ticket}.",
        "My user id is {snowflake} and my server is {snowflake}.",
        "Tracking {tracking} has been stuck since {date}.",
        "I entered {badcard} as a test card and it was rejected, which is fine.",
        "Your docs show the card example {nocard}, is that a real one?",
        "The IBAN {badiban} from your invoice is rejected by my bank.",
        "We upgraded to {ver4} yesterday and the roles vanished.",
        "Running version {ver4} on Windows {version}.",
        "Device IMEI {imei}, bought on {date}.",
        "Invoice {order} shows {price} but I was charged {price}.",
        "Postcode {postcode} isn't accepted at checkout.",
        "We have {amount} messages indexed and search takes {qty} seconds.",
        "The MAC address is {mac}, logs at {time}.",
        "Ping {user}: {ticket} needs a reply.",
        "Sort code {sortcode}, account {acct} — wait, I'll use the card on file instead.",
        "Refund of {price} for order number {order} was approved on {date}.",
        "Ticket {ticket} reopened at {time}; see thread {snowflake}.",
        "Reference {order}, parcel {tracking}, delivered {date}.",
        "The error code is 0x{hash} when loading {version}.",
        "Server listens on port {port}, deployed from {hash}.",
        "Call it a day: order {order} arrives on {date}.",
        "I've been waiting since {date} {time} for {ticket}.",
        "Gift card code {uuid} doesn't work on order {order}.",
        "The form rejected {badssn} as an invalid number, which is right, it was a typo.",
        "Is a bearer token the same as an API key? The docs mention ghp_ and sk- prefixes.",
        "Crash at {time}: std::vector out of range in build {hash}, see {ticket}.",
        "Our customer number is {acct} and the contract runs until {date}.",
    ],
    "de": [
        "Bestellung {order} vom {date} über {price} fehlt noch.",
        "Rechnungsnummer {order}, Betrag {price}, Sendung {tracking}.",
        "Seit Version {ver4} funktioniert {ticket} nicht mehr.",
        "Meine Nutzer-ID ist {snowflake}.",
        "Die IBAN {badiban} auf der Rechnung ist laut Bank ungültig.",
        "Lieferung an {postcode} am {date}.",
    ],
    "fr": [
        "Commande {order} du {date} pour {price}, toujours rien.",
        "Facture {order}, colis {tracking}.",
        "Depuis la version {ver4}, le {ticket} ne marche plus.",
        "Mon identifiant Discord est {snowflake}.",
        "L'IBAN {badiban} de la facture est refusé par ma banque.",
    ],
    "es": [
        "Pedido {order} del {date} por {price}, sigue sin llegar.",
        "Factura {order}, envío {tracking}.",
        "Desde la versión {ver4} el {ticket} no funciona.",
        "Mi ID de Discord es {snowflake}.",
        "El IBAN {badiban} de la factura no es válido según mi banco.",
    ],
    "pt": [
        "Pedido {order} de {date} no valor de {price}, ainda nada.",
        "Fatura {order}, rastreio {tracking}.",
        "Desde a versão {ver4} o {ticket} não funciona.",
        "Meu ID do Discord é {snowflake}.",
        "O IBAN {badiban} da fatura foi recusado pelo banco.",
    ],
}


# --- rendering --------------------------------------------------------------------------------

SLOT = re.compile(r"\{(\w+)\}")


class Gen:
    """Per-type value generators, with round-robin over sub-kinds for balanced coverage."""

    def __init__(self) -> None:
        self.phone_i = 0
        self.card_i = 0
        self.secret_i = 0

    def value(self, slot: str) -> Value:
        if slot == "EMAIL":
            return email(), "EMAIL"
        if slot in {"PHONE", "PHONE_F"}:
            region = REGIONS[self.phone_i % len(REGIONS)]
            self.phone_i += 1
            return phone_text(region, bare_ok=slot == "PHONE"), "PHONE"
        if slot == "CARD":
            name, number = card_number(self.card_i % len(CARD_NETWORKS))
            self.card_i += 1
            return card_text(number, name), "CARD"
        if slot == "IBAN":
            return iban_format(iban_compact()), "IBAN"
        if slot == "IP4":
            return ipv4(), "IP"
        if slot == "IP6":
            return ipv6(), "IP"
        if slot == "SSN":
            return ssn(), "SSN"
        if slot == "SSN_CTX":
            return ssn(dashed=False), "SSN"
        if slot == "SECRET":
            kind = SECRET_KINDS[self.secret_i % len(SECRET_KINDS)]
            self.secret_i += 1
            return kind(), "SECRET"
        if slot == "BEARER":
            return bearer_token(), "SECRET"
        if slot == "name":
            return rng.choice(FIRST).title(), None
        return DISTRACTORS[slot](), None


def render(parts: list[str], gen: Gen) -> dict[str, object]:
    text = ""
    entities: list[dict[str, object]] = []
    for index, template in enumerate(parts):
        if not template:
            continue
        if text and index:
            text += " "
        pos = 0
        for match in SLOT.finditer(template):
            text += template[pos : match.start()]
            value, kind = gen.value(match.group(1))
            if kind is not None:
                entities.append({"type": kind, "start": len(text), "end": len(text) + len(value)})
            text += value
            pos = match.end()
        text += template[pos:]
    return {"text": text, "entities": entities}


def positive(kind: str, gen: Gen) -> dict[str, object]:
    by_lang = POSITIVE[kind]
    lang = rng.choice([lang for lang in LANGS if lang in by_lang] or ["en"])
    parts = [rng.choice(OPEN[lang])]
    if rng.random() < 0.6:
        parts.append(rng.choice(FILLER[lang]))
    parts.append(rng.choice(by_lang[lang]))
    if rng.random() < 0.25:
        other = rng.choice([k for k in POSITIVE if k != kind])
        parts.append(rng.choice(POSITIVE[other]["en"]))
    if rng.random() < 0.5:
        parts.append(rng.choice(FILLER[lang]))
    parts.append(rng.choice(CLOSE[lang]))
    return render(parts, gen)


def negative(gen: Gen) -> dict[str, object]:
    lang = rng.choice(LANGS)
    parts = [rng.choice(OPEN[lang])]
    parts += rng.sample(NEGATIVE[lang], k=min(len(NEGATIVE[lang]), rng.randint(1, 3)))
    if rng.random() < 0.5:
        parts.append(rng.choice(FILLER[lang]))
    parts.append(rng.choice(CLOSE[lang]))
    return render(parts, gen)


def main() -> None:
    gen = Gen()
    plan = {"EMAIL": 80, "PHONE": 190, "CARD": 110, "IBAN": 70, "IP": 80, "SSN": 55}
    plan["SECRET"] = 120
    rows: list[dict[str, object]] = []
    for kind, count in plan.items():
        made = 0
        while made < count:
            row = positive(kind, gen)
            if len(str(row["text"])) <= 320:
                rows.append(row)
                made += 1
    made = 0
    while made < 320:
        row = negative(gen)
        if 60 <= len(str(row["text"])) <= 320:
            rows.append(row)
            made += 1
    rng.shuffle(rows)
    with OUT.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for row in rows:
        for entity in row["entities"]:  # type: ignore[attr-defined]
            counts[entity["type"]] = counts.get(entity["type"], 0) + 1
    print(f"wrote {len(rows)} texts to {OUT}: {counts}", file=sys.stderr)


if __name__ == "__main__":
    main()
