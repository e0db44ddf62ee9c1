"""Find personal data and pasted secrets in ticket text and replace them with typed placeholders.

Pure: standard library plus ``phonenumbers`` (its metadata only); no I/O, no clock.
``Redactor.find`` returns the entities as sorted, disjoint offsets into the input;
``Redactor.redact`` (and the module-level ``redact``) swap each for ``[EMAIL]``, ``[PHONE]``,
``[CARD]``, ``[IBAN]``, ``[IP]``, ``[SSN]`` or ``[SECRET]``.

Speed: one regex pass finds the runs of digits and separators, and each number detector only
looks inside a run with enough digits for it; e-mail starts at each "@", IBANs where two
capitals meet two digits, IPv6 only in texts with "::" or six colons, provider tokens only
where a run of 16+ token characters starts, assigned secrets only from a secret word followed
by a separator ("password:", "api_key="). Phone numbers are never searched with
``PhoneNumberMatcher`` (one pass per region) nor parsed at all: the regions' ``phonenumbers``
metadata is compiled into one regex per number length (on first use) that gives
``is_valid_number``'s answer for the digits (``tests/test_redact.py`` checks that they agree).
Cheap tests come before costly ones (the digits before the words around them), and the hot
paths avoid per-candidate allocations.

Decisions on the ambiguous cases:

* Phones. International forms (``+44 20 ...``, dialled abroad as ``0049 30 ...`` or
  ``011 44 20 ...``) need 8-15 digits and must be valid for the country code they start with.
  National forms need 9-12 digits and must be valid in a configured region or one sharing its
  country code (US: Canada, ...). Shorter (5-8 digits, "+683 7017", Dutch "14 020") and longer
  (13-15) ones count only right after a phone word, so order ids, dates and postcodes never
  qualify. Where numbers are written with the trunk "0" (GB, DE, FR, NL, ...) it is required,
  except for the number formats ``phonenumbers`` writes without it, so "771234567890" is a
  parcel number, not a German phone. A bare digit run needs a phone word just before it
  ("call", "Telefon", "portable", "móvil", a signature's "M:", "my number", ...) unless it has
  10+ digits and starts with "0". The label nearest before a number decides: after "order",
  "invoice", "tracking", "ticket", "IBAN", "version", "DHL", "#", ... it is not a phone.
  Groupings are free (spaces, dots, dashes, slashes, "(0)", the area code in parentheses), an
  extension after it (``x123``, ``ext. 45``, ``#77``, ``;ext=12``) belongs to it, and numbers
  in ``tel:`` links count whatever their length. Dates (also inside a run of digits), IPv4
  addresses, decimals, browser versions (``120.0.6099.109``), the digits of a failed IBAN, and
  SSN-shaped ``ddd-dd-dddd`` or ZIP+4 ``ddddd-dddd`` (except after a phone word) are never
  phones.
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
* Secrets. By format: Discord bot tokens, OpenAI, Anthropic, GitHub, GitLab, Slack (and
  Slack/Discord webhook URLs), Stripe, AWS key ids, Google API keys and OAuth tokens, Twilio,
  SendGrid, npm, PyPI, Hugging Face, Shopify, DigitalOcean, JWTs, PEM private key blocks; the
  value after "Bearer" or "Basic" (with a digit or mixed case); the password of a URL
  (``scheme://user:PASSWORD@host``) or of ``curl -u user:PASSWORD``. By context: the value of
  a key that names a secret (``password``, ``api_key``, ``client_secret``, ``AccountKey``,
  ``Passwort``, ...) set with ``=``, ``:``, ``=>``, as JSON, ``export``, a ``--flag`` or in
  prose ("my password is ..."), when the value looks like one: a password is 6+ characters and
  not one lower-case or capitalized word; a token or key is 10+ characters of base64, hex or
  alphanumerics with a digit (or random mixed case). Placeholders (``YOUR_API_KEY``,
  ``<redacted>``, ``********``, ``$VAR``, ``${{ secrets.X }}``) and code (``Name.Function``,
  ``call(x)``, ``key_password``, ``Optional[str]``) are not secrets.
* Overlaps resolve to one entity: the longest span wins, then the most specific type
  (SECRET, IBAN, CARD, EMAIL, SSN, IP, PHONE).
"""

from __future__ import annotations

import ipaddress
import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from operator import attrgetter

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
# The last sentence break: the greedy ".*" leaves the one that starts last.
_LAST_BREAK = re.compile(r".*([.!?] |\n)", re.DOTALL)

_DIGIT = re.compile(r"\d", re.ASCII)
# A run of digits and the separators numbers are written with; each number detector only
# looks inside these runs (plus two characters of context either side).
_CLUSTER = re.compile(r"[0-9][0-9 \t.()/-]{4,}", re.ASCII)

# --- e-mail -----------------------------------------------------------------------------------

# The domain is matched right after each "@"; the local part is walked back from it.
_EMAIL_DOMAIN = re.compile(r"(?:[^\W_](?:[\w-]{0,61}[^\W_])?\.)+[^\W\d_]{2,24}(?![\w-])")
# The characters of a local part (str.isalnum() or one of "._%+-'"), matched on the reversed
# text before the "@" to walk back to where it starts.
_LOCAL_PART_REVERSED = re.compile(r"[\w.%+'-]*")

# --- secrets ----------------------------------------------------------------------------------

_B64 = r"[A-Za-z0-9_-]"
# Token characters as "a", the rest as " ", for bytes.find to find runs of 16+ of them.
_TOKEN_MASK = bytes(
    97 if chr(byte).isascii() and (chr(byte).isalnum() or chr(byte) in "_.-") else 32
    for byte in range(256)
)
_LONG_RUN = b"a" * 16
# Providers' tokens, matched where a run of 16+ token characters starts (see _secrets).
_SECRET = re.compile(
    r"(?<![\w-])(?:"
    rf"[MNO]{_B64}{{23,31}}\.{_B64}{{6}}\.{_B64}{{27,40}}"  # Discord bot token
    # OpenAI (project, service account, admin keys) and Anthropic
    r"|sk-(?:proj-|svcacct-|admin-|ant-(?:api|admin)\d\d-|ant-)?[A-Za-z0-9_-]{20,}"
    r"|gh[pousr]_[A-Za-z0-9]{30,255}"  # GitHub classic tokens
    r"|github_pat_[A-Za-z0-9_]{40,255}"  # GitHub fine-grained tokens
    r"|gl(?:pat|dt|rt|ptt|cbt|oas|soat)-[A-Za-z0-9_-]{20,}"  # GitLab tokens
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack tokens
    r"|xapp-\d-[A-Za-z0-9-]{10,}"  # Slack app-level tokens
    r"|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{10,}"  # Stripe keys
    r"|whsec_[A-Za-z0-9+/=]{20,}"  # Stripe and Standard Webhooks secrets
    # AWS key ids: access keys, then the other unique-id prefixes AWS documents
    r"|(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|APKA|AROA|ASCA|A3T[A-Z0-9])[A-Z0-9]{16}"
    r"|AIza[A-Za-z0-9_-]{35}"  # Google API keys
    r"|ya29\.[A-Za-z0-9_-]{20,}"  # Google OAuth access tokens
    r"|SK[0-9a-fA-F]{32}"  # Twilio API keys
    r"|SG\.[A-Za-z0-9_-]{16,32}\.[A-Za-z0-9_-]{16,64}"  # SendGrid
    r"|npm_[A-Za-z0-9]{36}"  # npm
    r"|pypi-AgE[A-Za-z0-9_-]{40,}"  # PyPI (a macaroon, base64 of "pypi.org")
    r"|hf_[A-Za-z]{30,}"  # Hugging Face
    r"|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32}"  # Shopify
    r"|dop_v1_[a-f0-9]{64}"  # DigitalOcean
    rf"|eyJ{_B64}{{8,}}\.{_B64}{{8,}}\.{_B64}{{8,}}"  # JWT
    r")(?![\w-])",
    re.ASCII,
)
_WEBHOOK_URL = re.compile(
    r"https?://(?:hooks\.slack\.com/(?:services|workflows|triggers)/[A-Za-z0-9_/-]+"
    r"|(?:ptb\.|canary\.)?discord(?:app)?\.com/api/webhooks/\d+/[A-Za-z0-9_-]+)",
    re.ASCII,
)
# A PEM private key block, to its END line (or to where its base64 stops, if cut off).
_PRIVATE_KEY_BLOCK = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"(?:[\s\S]{0,16384}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
    r"|(?:\s*[A-Za-z0-9+/=:,-]+)+)",
    re.ASCII,
)
_BEARER = re.compile(
    r"\b(?:bearer|basic)\s+([A-Za-z0-9._~+/-]{16,}=*)(?![\w.~+/=-])", re.ASCII | re.I
)
# The password in a URL's user info: scheme://user:PASSWORD@host.
# (The patterns below start with a literal, which re finds fast; a leading lookbehind would
# be tried at every position.)
_URL_PASSWORD = re.compile(r"://[^\s:/@?#'\"]{1,64}:([^\s/@'\"]{1,128})@[\w.\[-]", re.ASCII)
# A key that names a secret, set to a value: key=value, key: value, "key": "value",
# export KEY='value', --key value. Found from the secret word inside the key and the separator
# after it (_SECRET_WORD, in the lower-cased text); the key runs back from the word over word
# characters, dots and dashes (_KEY_START_REVERSED); _ASSIGNED matches the rest of the key, the
# separator and the value. ``_secret_key`` decides on the key, ``_looks_secret`` on the value.
_SECRET_WORD = re.compile(
    r"(?:pass|pwd|secret|token|key|auth|cred|sig|wort|contrase|senha|wachtwoord|mdp)[\w.-]*"
    r"[\"']?(?:[ \t]*(?::=|=>|[:=])|[ \t]+(?:is|was)[ \t])"
)
_KEY_START_REVERSED = re.compile(r"[\w.-]{0,60}")
_VALUE = (
    r"(?:\"(?P<double>[^\"\n]{1,256})\"|'(?P<single>[^'\n]{1,256})'|`(?P<tick>[^`\n]{1,256})`"
    r"|(?P<bare>[^\s\"'`,;]{1,256}))"
)
# The separator: "=", ":", ":=", "=>", or "is" in prose ("my password is ...").
_ASSIGNED = re.compile(
    r"[\w.-]*(?P<sep>[\"']?(?:[ \t]*(?::=|=>|[:=])[ \t]*|[ \t]+(?P<prose>(?i:is|was))[ \t]+))"
    + _VALUE
)
# The same as a command-line flag: --db-password hunter2, --token=...
_FLAG = re.compile(r"--(?<![\w-]--)(?P<key>[A-Za-z][\w.-]{0,60})[ =]" + _VALUE, re.ASCII)
# <password>...</password> in XML (Maven's settings.xml, .NET configuration files).
_XML_ELEMENT = re.compile(r"<([A-Za-z][\w.:-]{0,60})>([^<>\s]{1,256})</\1>", re.ASCII)
# curl -u user:password, --user user:password
_USER_OPTION = re.compile(
    r"-(?<![\w-]-)(?:u|-user)[ =]?['\"]?[^\s:'\"]{1,64}:([^\s'\"]{1,128})", re.ASCII
)
_KEY_PARTS = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])", re.ASCII)
# The last part of a key that names a secret on its own ("db_password", "bot_token") ...
_SECRET_KEY_ENDS = frozenset(
    {"password", "passwd", "passphrase", "pass", "pwd", "pw", "passe", "mdp", "passcode",
     "secret", "token", "apikey", "credential", "credentials", "creds", "auth", "sig",
     "signature", "privatekey", "accesskey", "secretkey", "authkey", "sas"}
)  # fmt: skip
# ... "key", which names a secret only after one of these ("api_key", "AccountKey").
_KEY_QUALIFIERS = frozenset(
    {"api", "access", "secret", "private", "account", "shared", "signing", "encryption",
     "master", "app", "auth", "client", "license", "subscription", "service", "storage",
     "webhook", "bot", "deploy", "ssh", "x", "admin", "session", "consumer", "sas"}
)  # fmt: skip
# Suffixes that make a one-word key a secret's ("PGPASSWORD", "DBPASS").
_SECRET_KEY_SUFFIXES = ("password", "passwd", "secret", "token", "apikey")
_PASSWORD_KEYS = frozenset(
    {"password", "passwd", "passphrase", "pass", "pwd", "pw", "passe", "mdp", "passcode"}
)
# "Password" in the desk's other languages ("mot de passe" ends in "passe", above).
_PASSWORD_WORDS = ("passwort", "kennwort", "contraseña", "contrasena", "senha", "wachtwoord")
# In prose ("my token is ..."), only these keys: "the auth is ..." says nothing.
_PROSE_KEYS = frozenset({"token", "key", "apikey", "secret"})
# Values that stand for a secret without being one: placeholders and words in prose.
_NOT_SECRET_VALUES = frozenset(
    {"null", "none", "nil", "true", "false", "changeme", "redacted", "hidden", "example",
     "secret", "password", "placeholder", "undefined", "required", "optional", "string",
     "your", "yours", "here", "empty", "todo", "tbd", "dummy", "test", "sample"}
)  # fmt: skip
# A dotted name or a snake_case variable: code pasted around a key, not a value.
_IDENTIFIER = re.compile(
    r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)+|_*[a-z]+(?:_[a-z0-9]+)+_*|_+\d*_*(?:[A-Z][a-z]+)+",
    re.ASCII,
)
_CALL = re.compile(r"[A-Za-z_][\w.]*[(\[]", re.ASCII)
_CAMEL_CASE = re.compile(r"(?:[A-Z][a-z]+)+", re.ASCII)
_TOKEN_CHARS = re.compile(r"[A-Za-z0-9+/=_.~%-]+", re.ASCII)
_VARIABLE = re.compile(r"\$\{|\$[A-Za-z_]\w*\Z|%\w+%\Z", re.ASCII)
_CODE_PREFIXES = ("os.", "process.", "env", "getenv", "secrets.", "config.", "settings.", "self.")

# --- numbers: context words (lower case; prefixes match word starts, the sets whole words) ---

_PHONE_PREFIXES = (
    "phone", "telephon", "telefon", "téléphon", "teléfon", "telefoon", "mobil", "mobiel",
    "móvil", "movil", "handy", "cell", "celular", "call", "anruf", "rufnummer", "erreich",
    "whatsapp", "sms", "text", "reach", "contact", "kontakt", "contato", "contacto",
    "portable", "joindre", "appel", "rappel", "llam", "ligar", "ligue", "chiam", "bellen",
    "fax",
)  # fmt: skip
_PHONE_WORDS = frozenset(
    {"tel", "tél", "tlf", "fon", "ring", "cel", "whats", "liga", "ph", "phn", "mob", "office",
     "direct", "directo", "durchwahl", "dial", "hotline", "helpline", "landline", "wa"}
)  # fmt: skip
# One-letter labels of a signature block ("M: 07700 900123"), only with their colon.
_SIGNATURE_LABELS = frozenset({"m:", "t:", "f:", "p:", "c:", "h:", "o:", "d:", "w:", "tel:"})
# "number" names a phone after "my", "phone", ... and an order id after "order" ("number" alone
# says nothing).
_NUMBER_WORDS = frozenset({"number", "nummer", "numéro", "número", "numero", "no", "nr", "num"})
_OWNER_WORDS = frozenset(
    {"my", "our", "his", "her", "their", "your", "best", "meine", "mein", "ma", "mon",
     "mi", "meu", "minha", "il", "mio", "mijn", "contact"}
)  # fmt: skip
# A short number (5-8 digits) can be a phone only right after a phone word (see _is_phone);
# this quick test on the few characters before it rules most out.
_PHONE_HINT = re.compile(
    "|".join(
        (
            "phon", "tel", "tél", "mobil", "móvil", "movil", "handy", "cell", "celular", "whats",
            "fax", "call", "contact", "kontakt", "contat", "mob", "ph", "m:", "t:", "number",
            "nummer", "numéro", "número", "numero", "office", "direct", "portable", "llam",
            "ligue", "chiam", "bellen", "reach", "text", "sms", "dial", "line", "ring", "fon",
            "tlf", "anruf", "erreich", "joindre", "appel", "ligar", "wa",
        )
    )
)  # fmt: skip


def _phone_word_before(lowered: str, start: int) -> bool:
    return _PHONE_HINT.search(lowered, max(0, start - _CONTEXT_WINDOW), start) is not None


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
     "edge", "ios", "v", "ver", "fw", "po", "so", "case", "qty", "zip", "plz", "cep", "part",
     "ean", "upc", "gtin", "isbn", "asin", "mpn", "awb", "waybill"}
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


def _labels(
    positive: tuple[str, ...],
    positive_words: frozenset[str],
    negative: tuple[str, ...] = (),
    negative_words: frozenset[str] = _NO_WORDS,
) -> re.Pattern[str]:
    """The keywords for ``_nearest`` in one pattern, matched against a context word.

    It matches a word that is one of the words or starts with one of the prefixes, in group
    "positive" or "negative"; a word that is both counts as positive.
    """

    def either(prefixes: tuple[str, ...], words: frozenset[str]) -> str:
        options = [re.escape(prefix) for prefix in prefixes]
        options += [re.escape(word) + r"\Z" for word in sorted(words)]
        return "|".join(options) or "(?!)"

    return re.compile(
        f"(?P<positive>{either(positive, positive_words)})"
        f"|(?P<negative>{either(negative, negative_words)})"
    )


_PHONE_LABELS = _labels(_PHONE_PREFIXES, _PHONE_WORDS, _REFERENCE_PREFIXES, _REFERENCE_WORDS)
_CARD_LABELS = _labels(_CARD_PREFIXES, _CARD_WORDS)
_SSN_LABELS = _labels(_SSN_PREFIXES, _NO_WORDS)
_REFERENCE_LABELS = _labels(_REFERENCE_PREFIXES, _REFERENCE_WORDS)
_CARD_OR_REFERENCE_LABELS = _labels(
    _CARD_PREFIXES, _CARD_WORDS, _REFERENCE_PREFIXES, _REFERENCE_WORDS
)

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
_LEADING_RUN = re.compile(r"([0-9]+)[ -]", re.ASCII)
_LONG_LEADING_GROUP = re.compile(r"[+(]*[0-9]{7,}[^0-9]*", re.ASCII)
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
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
_OCTETS = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}")
_IPV6 = re.compile(
    r"(?<![\w:.])(?=[0-9A-Fa-f]{0,4}:[0-9A-Fa-f]{0,4}:)[0-9A-Fa-f:.]{2,45}(?:%[A-Za-z0-9_.-]+)?",
    re.ASCII,
)

_COLON_PAIR = re.compile(r":[0-9A-Fa-f]{0,4}:", re.ASCII)
_IPV6_CHARS = "0123456789abcdefABCDEF:."

# --- phones -----------------------------------------------------------------------------------

_PHONE_START = r"(?<![\w+@/.:=#$€£,-])(?:\+|\(\+?)?\d"
# The last digit: not glued to a word, an "@" or more digits ("x" starts an extension).
_PHONE_END = r"\d(?!(?![xX]\d)[\w@]|[.:/-]\d)"
_PHONE = re.compile(_PHONE_START + r"(?:[\d \t()-]|(?<=\d)[./](?=\d)){3,24}" + _PHONE_END, re.ASCII)
# The same without "." and "/" between digits: where the text searched has no _DOTTED, it finds
# what _PHONE finds, and a repeated character class is several times faster than a repeated
# group with lookarounds.
_PHONE_PLAIN = re.compile(_PHONE_START + r"[\d \t()-]{3,24}" + _PHONE_END, re.ASCII)
# An extension after a number: "x123", "ext. 45", "#77", ";ext=12", "poste 12", "Durchwahl 3".
_EXTENSION = re.compile(
    r"(?:[ \t]*,)?[ \t]*(?:\((?=[^)\n]{1,20}\)))?"
    r"(?:x|ext\.?|extn\.?|extension|#|poste|durchwahl|dw\.?|int\.?)[ \t]*:?[ \t]*\d{1,6}\)?(?!\w)"
    r"|;ext=\d{1,6}(?!\w)",
    re.ASCII | re.I,
)
# A number in a tel: (or callto:, sms:) link; the number is written as the link gives it.
_TEL_URI = re.compile(
    r"\b(?:tel|callto|sms):(?://)?(\+?[0-9][0-9().\-]{2,30}[0-9](?:;ext=\d{1,6})?)(?![\w-])",
    re.ASCII | re.I,
)
# A date and nothing else ("2026-11-23", "23.11.2026"): no phone to look for in it.
_DATE = re.compile(
    r"\d{1,2}([./-])\d{1,2}\1(?:19|20)\d\d|(?:19|20)\d\d([./-])\d{1,2}\2\d{1,2}", re.ASCII
)
# A date anywhere in a candidate ("HTTP 429 19/10/2023" is one run of digits and separators).
_DATE_INSIDE = re.compile(
    r"(?<!\d)(?:\d{1,2}([./-])\d{1,2}\1(?:19|20)\d\d|(?:19|20)\d\d([./-])\d{1,2}\2\d{1,2})"
    r"(?![0-9]|[./-][0-9])",
    re.ASCII,
)
_DOTTED = re.compile(r"[0-9][./][0-9]")
# An IPv4 address or a decimal (a leading "0" makes it neither: "074104.17251").
_NOT_A_PHONE = re.compile(rf"(?:{_OCTET}\.){{3}}{_OCTET}$|(?:0|[1-9]\d*)\.\d+$", re.ASCII)
# SSN-shaped, or a US ZIP+4 code ("MA 02110-1301"): a phone only after a phone word.
_SSN_SHAPED = re.compile(r"\d{3}-\d{2}-\d{4}$|\d{5}-\d{4}$", re.ASCII)
_GROUPED_TAIL = re.compile(r"(?:[ \t.-]?[0-9])*", re.ASCII)
# A North American number without its area code ("555-0123"), only after a phone word.
_NANP_LOCAL = re.compile(r"[2-9][0-9]{2}[-. ][0-9]{4}", re.ASCII)
_IBAN_BEFORE = re.compile(r"\b[A-Z]{2}[0-9]{2}(?: [A-Z0-9]{4})* $", re.ASCII)


# A number description from the metadata: its possible lengths (empty: any) and its pattern.
_Desc = tuple[frozenset[int], str]
# Regions where a nationally written number always carries its trunk prefix "0". (In the US
# the trunk "1" is usually left out; in Brazil and India the "0" often is.)
_TRUNK_WRITTEN = frozenset(
    {"GB", "GG", "JE", "IM", "DE", "FR", "NL", "AT", "CH", "BE", "IE", "SE", "FI", "TR", "AU", "NZ"}
)


@dataclass(frozen=True, slots=True)
class _RegionRule:
    """A region's numbering plan from ``phonenumbers`` metadata, as regex source."""

    region: str
    national_prefix: str
    trunk_required: bool  # national numbers are always written with the trunk prefix
    general: _Desc
    types: tuple[_Desc, ...]
    # Where the trunk prefix is required: regex source for the leading digits of the numbers
    # whose national format has no trunk prefix (Dutch "14 020", Austrian "14..."), or "".
    without_trunk: str = ""

    def nsn_source(self) -> str:
        """Regex source for a national significant number with a known type in this region.

        The test ``phonenumbers.is_valid_number`` makes, minus the parsing: the general
        description and at least one type's (fixed line, mobile, ...) must accept it, each
        with its possible lengths. Every alternative ends with ``\\Z``.
        """
        types = "|".join(_desc_source(desc) for desc in self.types) or "(?!)"
        return f"(?={_desc_source(self.general)})(?:{types})"

    def has_length(self, length: int, *, national: bool) -> bool:
        """Whether ``source`` can match digits of this length (a quick test on the lengths)."""
        lengths = self.general[0]
        if not lengths:
            return True
        prefix = self.national_prefix
        if prefix and length - len(prefix) in lengths:
            return True
        trunk_required = national and self.trunk_required and not self.without_trunk
        return not trunk_required and length in lengths

    def source(self, *, national: bool) -> str:
        """Regex source for the digits of a valid number here, with or without the trunk prefix.

        Written nationally in a region that always writes its trunk prefix (030 ... in
        Germany, 06 ... in France), the prefix is required: "771234567890" is a valid German
        number to ``phonenumbers`` but no German would write it so; it is a parcel number.
        """
        if not self.national_prefix:
            return self.nsn_source()
        if not (national and self.trunk_required):
            return f"(?:{re.escape(self.national_prefix)})?{self.nsn_source()}"
        with_trunk = f"{re.escape(self.national_prefix)}{self.nsn_source()}"
        if not self.without_trunk:
            return with_trunk
        without = f"(?=(?:{self.without_trunk}))(?!{re.escape(self.national_prefix)})"
        return f"(?:{with_trunk}|{without}{self.nsn_source()})"


def _desc_source(desc: _Desc) -> str:
    """Regex source for a whole number the description accepts (a length test, then the
    pattern, up to the end of the text)."""
    lengths, pattern = desc
    if not lengths:
        return f"(?:{pattern})\\Z"
    sizes = "|".join(f"(?s:.){{{length}}}\\Z" for length in sorted(lengths))
    return f"(?={sizes})(?:{pattern})\\Z"


def _read_desc(desc: phonenumbers.PhoneNumberDesc | None, general: _Desc | None) -> _Desc | None:
    if desc is None or desc.national_number_pattern is None:
        return None
    lengths = frozenset(desc.possible_length or ())
    if general is not None and not lengths:
        lengths = general[0]
    if lengths == frozenset({-1}):
        return None  # the region has no numbers of this type
    return lengths, desc.national_number_pattern


@cache
def _region_rule(region: str) -> _RegionRule:
    metadata = PhoneMetadata.metadata_for_region(region)
    if metadata is None:
        raise ValueError(f"Unknown phone region {region!r}")
    general = _read_desc(metadata.general_desc, None) or (frozenset(), ".*")
    types = tuple(
        desc
        for desc in (
            _read_desc(getattr(metadata, name), general)
            for name in (
                "fixed_line", "mobile", "toll_free", "premium_rate", "shared_cost",
                "personal_number", "voip", "pager", "uan", "voicemail",
            )
        )
        if desc is not None
    )  # fmt: skip
    prefix = metadata.national_prefix or ""
    # The formats written without the trunk prefix: no formatting rule, or one without it.
    without_trunk = "|".join(
        f"(?:{number_format.leading_digits_pattern[-1]})"
        for number_format in metadata.number_format
        if number_format.leading_digits_pattern
        and prefix not in (number_format.national_prefix_formatting_rule or "")
    )
    return _RegionRule(
        region=region,
        national_prefix=prefix,
        trunk_required=bool(prefix) and region in _TRUNK_WRITTEN,
        general=general,
        types=types,
        without_trunk=without_trunk,
    )


@dataclass(frozen=True, slots=True)
class _Plan:
    """Regions checked together: per number length, the plans of the regions that have numbers
    that long compiled into one regex (on first use), so a number is tested in one call."""

    rules: tuple[_RegionRule, ...]
    national: bool  # digits as written inside the country, else after the country code
    by_length: dict[int, re.Pattern[str]] = field(default_factory=dict, compare=False)

    def valid(self, digits: str) -> bool:
        """Whether ``digits`` are a valid number in one of the regions."""
        pattern = self.by_length.get(len(digits))
        if pattern is None:
            pattern = self.by_length[len(digits)] = self._compile(len(digits))
        return pattern.match(digits) is not None

    def _compile(self, length: int) -> re.Pattern[str]:
        national = self.national
        sources = [
            f"(?:{rule.source(national=national)})"
            for rule in self.rules
            if rule.has_length(length, national=national)
        ]
        return re.compile("|".join(sources) or "(?!)")


@cache
def _plan(regions: tuple[str, ...], *, national: bool) -> _Plan:
    return _Plan(rules=tuple(_region_rule(region) for region in regions), national=national)


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
    """Luhn's check on ASCII digits; the digit sum is the sum of the byte values less "0"s."""
    weighted = (digits[-1::-2] + digits[-2::-2].translate(_LUHN_DOUBLE)).encode("ascii")
    return (sum(weighted) - 48 * len(weighted)) % 10 == 0


_CardRows = tuple[tuple[int, dict[str, frozenset[int]]], ...]


def _card_prefix_table() -> dict[str, _CardRows]:
    """first digit -> (prefix width, prefix -> allowed lengths) for the prefixes starting with
    that digit, from ``_CARD_RANGES``."""
    table: dict[str, dict[int, dict[str, frozenset[int]]]] = {}
    for first, last, lengths in _CARD_RANGES:
        width = len(str(first))
        for prefix in range(first, last + 1):
            key = str(prefix)
            row = table.setdefault(key[0], {}).setdefault(width, {})
            row[key] = row.get(key, frozenset()) | lengths
    return {digit: tuple(rows.items()) for digit, rows in table.items()}


_CARD_PREFIXES_BY_FIRST_DIGIT = _card_prefix_table()


def _card_network_ok(digits: str) -> bool:
    """Whether ``digits`` start with an issuer prefix that issues cards of this length."""
    length = len(digits)
    for width, row in _CARD_PREFIXES_BY_FIRST_DIGIT.get(digits[:1], ()):
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
    last_break = _LAST_BREAK.match(window)
    if last_break is not None:
        end = last_break.start(1)
        if not window[:end].endswith(_ABBREVIATIONS):
            window = window[end + 1 :]
    return window.split()[-_CONTEXT_WORDS:]


def _nearest(words: list[str], labels: re.Pattern[str]) -> int:
    """1 if the keyword nearest the end of ``words`` is positive, -1 if negative, else 0.

    ``labels`` comes from ``_labels``.
    """
    for raw in reversed(words):
        label = labels.match(raw.strip(_PUNCTUATION))
        if label is not None:
            return 1 if label.lastgroup == "positive" else -1
    return 0


class Redactor:
    """Finds and replaces PII and secrets; safe to share, it keeps no per-call state."""

    __slots__ = ("_nanp", "_plan")

    def __init__(self, regions: Sequence[str] = DEFAULT_REGIONS) -> None:
        regions = _with_siblings(regions)
        self._plan = _plan(regions, national=True)
        # Whether seven-digit local numbers ("555-0123") are written in one of the regions.
        self._nanp = any(phonenumbers.country_code_for_region(code) == 1 for code in regions)

    def find(self, text: str) -> list[Entity]:
        """Every entity in ``text``, sorted by offset, none overlapping another."""
        if not text:
            return []
        found: list[Entity] = []
        if "@" in text:
            _emails(text, found)
        lowered = text.lower()
        # One byte per character (offsets carry over), for the bytes.find scans of _secrets
        # and _ibans.
        latin = text.encode("latin-1", "replace")
        _secrets(text, lowered, latin, found)
        if any(mark in lowered for mark in _ASSIGNMENT_MARKS):
            _assignments(text, lowered, found)
        if "::" in text or text.count(":") >= 6:  # see _ipv6: fewer colons cannot make one
            _ipv6(text, found)
        # Every number-shaped detector works inside the digit clusters, found in one pass; a
        # detector only runs on a cluster with enough digits for what it looks for.
        # A phone's digits all lie in one cluster. National numbers have 9+ digits, so 8 make one
        # only when written internationally, with the "+" right before the cluster.
        ssn_words: bool | None = None
        if ("tel:" in lowered or "callto:" in lowered or "sms:" in lowered) and ":" in text:
            self._tel_links(text, found)
        for cluster in _CLUSTER.finditer(text):
            run = cluster.group().rstrip()
            start = cluster.start()
            stop = start + len(run) + 2  # lookaheads need two characters (re clamps it)
            if run.isdigit():  # bare digits: one candidate, the whole run
                count = len(run)
                before = text[start - 1 : start]  # "" at the start of the text
                if count > 19 or before.isalnum() or before == "_":
                    continue  # too long for anything, or glued to a word
                if count < 9:  # a phone after "+" or a phone word only (see _is_phone)
                    if before == "+" or _phone_word_before(lowered, start):
                        self._phones(text, max(0, start - 2), stop, found, bare=True)
                    continue
                if count == 9:
                    if ssn_words is None:
                        ssn_words = _has_ssn_word(text)
                    if ssn_words:
                        _ssns(text, start, stop, found)
                elif count >= 13:
                    _bare_card(text, start, run, found)
                # The run is the only phone candidate: 9-12 digits, or up to 15 after "+", "00"
                # or a phone word (see _is_phone).
                if count <= 12 or (
                    count <= 15
                    and (before == "+" or run[0] == "0" or _phone_word_before(lowered, start))
                ):
                    self._phones(text, max(0, start - 2), stop, found, bare=True)
                continue
            count = len(run.encode().translate(None, _NUMBER_SEPARATORS))  # its digits
            if count < 4:
                continue
            if run.count(".") >= 3:
                _ipv4(text, start, stop, found)
            if count < 9:  # a phone after "+" or a phone word only (see _is_phone)
                if count >= 5 and (
                    text[start - 1 : start] == "+"
                    or (_DATE.fullmatch(run) is None and _phone_word_before(lowered, start))
                ):
                    self._phones(text, max(0, start - 2), stop, found, bare=False)
                continue
            if count >= 9:
                if ssn_words is None and "-" not in run:
                    ssn_words = _has_ssn_word(text)
                if "-" in run or ssn_words:
                    _ssns(text, start, stop, found)
                if count >= 13:
                    _cards(text, start, stop, found)
            self._phones(text, max(0, start - 2), stop, found, bare=False)
        _ibans(text, latin, found)
        return found if len(found) < 2 else _resolve(found)

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

    def _phones(self, text: str, pos: int, endpos: int, found: list[Entity], *, bare: bool) -> None:
        # Around a cluster of bare digits, no "." or "/" stands between two digits.
        phone = _PHONE_PLAIN if bare or _DOTTED.search(text, pos, endpos) is None else _PHONE
        match = phone.search(text, pos, endpos)
        while match is not None:
            start, end = match.span()
            candidate = match.group()
            if self._is_phone(text, start, candidate):
                extension = _EXTENSION.match(text, end)
                if extension is not None:
                    end = extension.end()
                found.append(Entity(EntityType.PHONE, start, end))
            elif candidate.lstrip("+(")[:7].isdigit():  # else _next_group gives ``end``
                # The regex is greedy: "<snowflake> 0151 2345678" is one match. Try again from
                # the next group, where a number that was swallowed may start.
                end = _next_group(text, start, end)
            elif len(_only_digits(candidate)) >= 16:
                # A long grouped number (a parcel number) cut at the pattern's length: its
                # tail ("... 3397 4284 90") is no phone either.
                tail = _GROUPED_TAIL.match(text, end)
                end = tail.end() if tail is not None else end
            # A candidate is at least five characters long.
            match = phone.search(text, end, endpos) if endpos - end >= 5 else None

    def _tel_links(self, text: str, found: list[Entity]) -> None:
        """Numbers in tel: links: a phone whatever its length, if its digits can be one."""
        for match in _TEL_URI.finditer(text):
            number = match.group(1)
            digits = _only_digits(number.split(";", 1)[0])
            if number.startswith("+"):
                ok = 5 <= len(digits) <= 15 and _international_could_be(digits)
            else:
                ok = 5 <= len(digits) <= 15 and (
                    self._plan.valid(digits)
                    or (digits.startswith("00") and _international_could_be(digits[2:]))
                )
            if ok:
                found.append(Entity(EntityType.PHONE, match.start(1), match.end(1)))

    def _is_phone(self, text: str, start: int, candidate: str) -> bool:
        digits = _only_digits(candidate)
        size = len(digits)
        if candidate.startswith(("+", "(+")):
            if not (5 <= size <= 15 and _international_could_be(digits)):
                return False
            # 5-7 digits after "+" are a phone only right after a phone word.
            return size >= 8 or _phone_label(_words_before(text, start)) > 0
        if not 5 <= size <= 18:
            return False
        if "." in candidate and any(len(part) < 2 for part in candidate.split(".")):
            return False  # 128.0.6099.109 is a browser version, not 128 0 6099 109
        bare = candidate.isdigit()  # no separators: the candidate has no "+" here
        if not bare and (_NOT_A_PHONE.match(candidate) or _DATE_INSIDE.search(candidate)):
            return False  # an IPv4 address, a decimal, or a date in it
        # The digits are tested before the (costlier) words around them: as written in one
        # of the regions, or dialled abroad from Europe (00 ...) or North America (011 ...).
        if size == 7 and self._nanp and _NANP_LOCAL.fullmatch(candidate) is not None:
            return _phone_label(_words_before(text, start)) > 0
        if 5 <= size <= 15 and self._plan.valid(digits):
            dialled = False
        elif _dialled_abroad(digits):
            dialled = True
        else:
            return False
        words = _words_before(text, start)
        label = _phone_label(words)
        if label < 0:
            return False  # the nearest label says order/tracking/invoice/version/...
        if label == 0:
            if not dialled and not 9 <= size <= 12:
                return False  # short or long national numbers need a phone word before them
            if bare and (size < 10 or digits[0] != "0" or digits[:3] == "011"):
                return False  # bare digits need a phone word, unless "0" and 10+ digits
            if _SSN_SHAPED.match(candidate):
                return False
        return not _after_iban_start(text, start)  # the digits of an IBAN whose checksum failed


def _dialled_abroad(digits: str) -> bool:
    """Whether ``digits`` are a number dialled from Europe (00 ...) or North America (011 ...)."""
    if digits.startswith("00"):
        return len(digits) >= 10 and _international_could_be(digits[2:])
    return len(digits) >= 11 and digits.startswith("011") and _international_could_be(digits[3:])


def _phone_label(words: list[str]) -> int:
    """``_nearest`` for phones, which also reads signature labels and "number"."""
    if not words:
        return 0
    if words[-1] in _SIGNATURE_LABELS:
        return 1
    for index in range(len(words) - 1, -1, -1):
        word = words[index].strip(_PUNCTUATION)
        if word in _NUMBER_WORDS:
            # "my number", "phone number": a phone; "order number": not; else read on.
            if index and words[index - 1].strip(_PUNCTUATION) in _OWNER_WORDS:
                return 1
            continue
        label = _PHONE_LABELS.match(word)
        if label is not None:
            return 1 if label.lastgroup == "positive" else -1
    return 0


_NUMBER_SEPARATORS = b" \t.()/+-"  # and "+": what numbers are written with besides digits


def _only_digits(run: str) -> str:
    """``run`` without the separators and "+" numbers are written with."""
    return run.encode().translate(None, _NUMBER_SEPARATORS).decode()


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
            floor = max(0, at - 128)
            local_run = _LOCAL_PART_REVERSED.match(text[floor:at][::-1])  # it always matches
            start = at - (local_run.end() if local_run else 0)
            while start < at and text[start] in ".%-'":  # may not start a local part
                start += 1
            local = text[start:at]
            if local and ".." not in local and not local.endswith(".") and not _in_url(text, at):
                found.append(Entity(EntityType.EMAIL, start, domain.end()))
        at = text.find("@", at + 1)


def _in_url(text: str, at: int) -> bool:
    """Whether the "@" at ``at`` ends the user info of a URL (scheme://user:password@host)."""
    scheme = text.rfind("://", max(0, at - 200), at)
    return scheme != -1 and not any(char.isspace() for char in text[scheme:at])


def _secrets(text: str, lowered: str, latin: bytes, found: list[Entity]) -> None:
    # A provider's token starts a run of 16+ token characters: only those starts are tried,
    # found with bytes.find on a mask of the token characters.
    tokens = latin.translate(_TOKEN_MASK)
    at = tokens.find(_LONG_RUN)
    while at != -1:
        match = _SECRET.match(text, at)
        if match is not None:
            found.append(Entity(EntityType.SECRET, match.start(), match.end()))
        stop = tokens.find(b" ", at)
        at = tokens.find(_LONG_RUN, stop) if stop != -1 else -1
    if "://" in text:
        for match in _WEBHOOK_URL.finditer(text):
            found.append(Entity(EntityType.SECRET, match.start(), match.end()))
    if "-----BEGIN" in text:
        for match in _PRIVATE_KEY_BLOCK.finditer(text):
            found.append(Entity(EntityType.SECRET, match.start(), match.end()))
    if "://" in text:
        for match in _URL_PASSWORD.finditer(text):
            if _looks_secret(match.group(1), password=True):
                found.append(Entity(EntityType.SECRET, match.start(1), match.end(1)))
    if "bearer" in lowered or "basic" in lowered:
        for match in _BEARER.finditer(text):
            token = match.group(1)
            # A token has a digit or mixed case; "Bearer authentication" has neither.
            if _DIGIT.search(token) is not None or (not token.islower() and not token.isupper()):
                found.append(Entity(EntityType.SECRET, match.start(1), match.end(1)))


# A text without any of these assigns no value to a key (see _assignments).
_ASSIGNMENT_MARKS = ("=", ":", "--", "</", " is ", " was ")


def _assignments(text: str, lowered: str, found: list[Entity]) -> None:
    """Values set on keys that name a secret (``api_key=...``, ``"password": "..."``)."""
    done = 0  # where the last key ended: "auth_token" holds two secret words
    for word in _SECRET_WORD.finditer(lowered):
        at = word.start()
        if at < done:
            continue
        match = _ASSIGNED.match(text, at)
        if match is None:
            continue
        done = match.end()
        back = _KEY_START_REVERSED.match(text[max(0, at - 60) : at][::-1])
        key_start = at - (back.end() if back else 0)
        key = text[key_start : match.start("sep")].strip("\"'-")
        _assigned_value(key, match, found, prose=match.group("prose") is not None)
    if "--" in text:
        for match in _FLAG.finditer(text):
            _assigned_value(match.group("key"), match, found, prose=False)
    if "</" in text:
        for match in _XML_ELEMENT.finditer(text):
            password = _secret_key(match.group(1))
            if password is not None and _looks_secret(match.group(2), password=password):
                found.append(Entity(EntityType.SECRET, match.start(2), match.end(2)))
    if "-u" in text:
        for match in _USER_OPTION.finditer(text):
            if _looks_secret(match.group(1), password=True):
                found.append(Entity(EntityType.SECRET, match.start(1), match.end(1)))


def _assigned_value(key: str, match: re.Match[str], found: list[Entity], *, prose: bool) -> None:
    password = _secret_key(key, prose=prose)
    if password is None:
        return
    name = match.lastgroup or "bare"
    value = match.group(name)
    start, end = match.span(name)
    if name == "bare":
        stripped = value.rstrip(".:)]}")  # the end of a sentence or a bracket
        end -= len(value) - len(stripped)
        value = stripped
    if _looks_secret(value, password=password):
        found.append(Entity(EntityType.SECRET, start, end))


def _secret_key(key: str, *, prose: bool = False) -> bool | None:
    """Whether ``key`` names a secret a person may choose, like a password (True), one a
    machine makes, like a token or an API key (False), or no secret (None)."""
    if key.lower().endswith(_PASSWORD_WORDS):
        return True
    parts = [part.lower() for part in _KEY_PARTS.findall(key)]
    if not parts:
        return None
    last = parts[-1]
    if prose and last not in _PASSWORD_KEYS and last not in _PROSE_KEYS:
        return None
    if last in _SECRET_KEY_ENDS:
        return last in _PASSWORD_KEYS or last == "secret"
    if last == "key" and (len(parts) == 1 or parts[-2] in _KEY_QUALIFIERS):
        return parts[-2:] == ["secret", "key"]  # Django's SECRET_KEY is any printable text
    if last.endswith(_SECRET_KEY_SUFFIXES):
        return "pass" in last or last.endswith("secret")
    return None


def _looks_secret(value: str, *, password: bool) -> bool:
    """Whether ``value``, set on a key that names a secret, is one (not a placeholder or prose).

    A password is anything of 6+ characters that is not one lower-case word; another secret
    (a token, a key) has 10+ characters of two kinds (letters and digits, or mixed case).
    """
    size = len(value)
    if size < (6 if password else 10) or len(set(value)) < (4 if password else 6):
        return False  # too short, or "********", "xxxxxxxxxxxxxxxx"
    if value[0] in "<[{(" or value.startswith("...") or _CALL.match(value) is not None:
        return False  # <your-key-here>, [hidden], {{ secrets.X }}, call(x), Optional[str]
    if _IDENTIFIER.fullmatch(value) is not None:
        return False  # code: Name.Function, aiohttp.BasicAuth, key_password
    if not password and _TOKEN_CHARS.fullmatch(value) is None:
        return False  # keys and tokens are base64, hex or alphanumerics with a few marks
    if _VARIABLE.match(value) is not None:
        return False  # $VAR, ${VAR}, %VAR%: a reference to where the secret is kept
    lowered = value.lower()
    if lowered in _NOT_SECRET_VALUES or lowered.startswith(_CODE_PREFIXES):
        return False
    has_digit = _DIGIT.search(value) is not None
    has_upper = lowered != value  # lower() changed a capital
    has_lower = value.upper() != value
    if not (has_digit or has_upper or has_lower):
        return False  # no letter nor digit: "--------", "!!!!!!"
    if has_upper and not has_lower and not has_digit:
        return False  # REDACTED, YOUR_API_KEY: a placeholder in capitals
    if password:
        if value.isalpha():  # one word: "incorrect", "Forgotten" are prose; "HunterTwo" is not
            return not (value.islower() or value[1:].islower())
        return True
    if has_digit:
        return has_upper or has_lower
    # Letters only: random mixed case, not a CamelCase name ("EventLoopToken" is a type).
    return has_upper and has_lower and _CAMEL_CASE.fullmatch(value) is None


def _ibans(text: str, latin: bytes, found: list[Entity]) -> None:
    size = len(text)
    # Where two capitals and two digits meet, found with bytes.find on a letter/digit mask
    # (one byte per character, so offsets carry over); far cheaper than a regex scan.
    mask = latin.translate(_IBAN_MASK)
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
        if span > length and written[4::5].strip(" "):
            continue  # not a space after every group of four
        if (
            len(compact) == length
            and compact.isascii()
            and compact.isalnum()
            and _iban_ok(compact.upper())
        ):
            found.append(Entity(EntityType.IBAN, start, end))
            return


def _after_iban_start(text: str, start: int) -> bool:
    """Whether ``start`` follows the start of an IBAN written in groups ("DE89 3704 |")."""
    # The pattern ends in four capitals or digits and a space (its "$" also matches before a
    # final newline): a quick test rules most places out.
    end = start - 1 if text[start - 1 : start] == "\n" else start
    return (
        text[end - 1 : end] == " "
        and text[end - 5 : end - 1].isalnum()
        and _IBAN_BEFORE.search(text, max(0, start - _CONTEXT_WINDOW), start) is not None
    )


def _next_group(text: str, start: int, end: int) -> int:
    """Where to look again after rejecting ``text[start:end]``.

    A greedy match can swallow a long number and the one after it ("<snowflake> 0151 2345678"),
    so when the first group has 7+ digits the search resumes at the second group. A shorter
    first group means one grouped number (a parcel or reference number) and is skipped whole:
    its slices are not cards or phones.
    """
    lead = _LONG_LEADING_GROUP.match(text, start, end)
    if lead is None or lead.end() >= end:
        return end
    return lead.end()


def _cards(text: str, pos: int, endpos: int, found: list[Entity]) -> None:
    match = _CARD.search(text, pos, endpos)
    while match is not None:
        base = match.start()
        lo = _best_card_window(text, base, match.group())
        if lo is not None:
            found.append(Entity(EntityType.CARD, base + lo, match.end()))
            resume = match.end()
        else:
            resume = _next_group(text, base, match.end())  # see _phones
            # A card written as one run can be followed by more digits ("<card> 2023-03-28").
            lead = _LEADING_RUN.match(text, base, resume)
            if lead is not None and 13 <= len(lead.group(1)) <= 19:
                _bare_card(text, base, lead.group(1), found)
        # A candidate is at least twelve characters long.
        match = _CARD.search(text, resume, endpos) if endpos - resume >= 12 else None


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
    if not _card_network_ok(run):
        return
    if len(run) >= 17 and _nearest(_words_before(text, start), _CARD_LABELS) <= 0:
        return  # a bare 17+ digit run is a Discord snowflake unless called a card
    if not _luhn_ok(run):
        return
    if _nearest(_words_before(text, start), _CARD_OR_REFERENCE_LABELS) < 0:
        return  # "IMEI 35...", "EAN 40...": Luhn-valid numbers that are not cards
    found.append(Entity(EntityType.CARD, start, end))


def _ssns(text: str, pos: int, endpos: int, found: list[Entity]) -> None:
    for match in _SSN.finditer(text, pos, endpos):
        area, separator, group, serial = match.groups()
        if area in {"000", "666"} or area[0] == "9" or group == "00" or serial == "0000":
            continue
        words = _words_before(text, match.start())
        if _nearest(words, _SSN_LABELS) <= 0 and (
            separator != "-"
            or _nearest(words[-3:], _REFERENCE_LABELS) > 0
            or _phone_label(words) > 0
        ):
            # Undashed needs "SSN" before it; dashed must not follow "order" etc., nor "tel"
            # (then it is a phone number: see _is_phone).
            continue
        found.append(Entity(EntityType.SSN, match.start(), match.end()))


def _ipv4(text: str, pos: int, endpos: int, found: list[Entity]) -> None:
    for match in _IPV4.finditer(text, pos, endpos):
        # Octets 0-255 without leading zeros: what ipaddress.IPv4Address accepts, tested in one
        # regex call instead.
        if _OCTETS.fullmatch(match.group()) is None:
            continue
        if _after_version_word(_words_before(text, match.start())):
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
        # Back to where the address starts (at most 45 characters: a longer run of colons and
        # hex digits is no address, and a bounded look keeps long runs from taking n² time).
        floor = max(0, start - 45)
        start = floor + len(text[floor:start].rstrip(_IPV6_CHARS))
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


def _best_card_window(text: str, base: int, run: str) -> int | None:
    """Where in ``run`` the longest tail of its digit groups that is a card starts."""
    # _CARD puts one space or dash between groups, never two in a row.
    sizes = list(map(len, run.replace("-", " ").split(" ")))
    if 5 < sizes[-1] < 13:
        return None  # too long to end a grouped card (see _card_grouping_ok), too short alone
    last = len(sizes) - 1
    # Windows run to the last group (a grouped number with more after it is not a card) and may
    # drop leading groups ("qty 2 4111 1111 1111 1111"); the longest is tried first.
    windows: list[tuple[int, int]] = []  # (first group, offset in run), shortest first
    digits = 0
    for first in range(last, -1, -1):
        digits += sizes[first]
        if digits > 19:
            break
        if digits >= 13:
            windows.append((first, len(run) - digits - (last - first)))
    for first, lo in reversed(windows):
        tail = run[lo:]
        if first < last and (
            not _card_grouping_ok(sizes[first:])
            or (first > 0 and sizes[first - 1] == 4)  # the tail of a longer grouped number
            or (" " in tail and "-" in tail)  # one kind of separator
        ):
            continue
        digits_text = tail.replace(" ", "").replace("-", "")
        if not _card_network_ok(digits_text):
            continue
        if (
            first == last
            and len(digits_text) >= 17
            and _nearest(_words_before(text, base + lo), _CARD_LABELS) <= 0
        ):
            continue  # a bare 17+ digit run is a Discord snowflake unless called a card
        if _luhn_ok(digits_text) and not _after_iban_start(text, base + lo):
            return lo
    return None


_AMEX_GROUPINGS = ([4, 6, 5], [4, 6, 4])


def _card_grouping_ok(sizes: list[int]) -> bool:
    """4-4-4-4 style (the last group may be short), or Amex/Diners 4-6-5 and 4-6-4."""
    if sizes in _AMEX_GROUPINGS:
        return True
    return 1 <= sizes[-1] <= 4 and sizes[:-1].count(4) == len(sizes) - 1


_START = attrgetter("start")


def _resolve(found: list[Entity]) -> list[Entity]:
    """Keep one entity per overlapping cluster: longest first, then the most specific type."""
    by_start = sorted(found, key=_START)
    if all(a.end <= b.start for a, b in itertools.pairwise(by_start)):
        return by_start  # nothing overlaps (the usual case): every entity is kept
    ordered = sorted(found, key=lambda e: (e.start - e.end, _RANK[e.type], e.start))
    kept: list[Entity] = []
    for entity in ordered:
        if all(entity.end <= other.start or entity.start >= other.end for other in kept):
            kept.append(entity)
    kept.sort(key=_START)
    return kept


@cache
def _default_redactor() -> Redactor:
    return Redactor()


def redact(text: str) -> str:
    """``text`` with PII and secrets replaced by placeholders, using the default regions."""
    return _default_redactor().redact(text).text
