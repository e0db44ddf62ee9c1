"""Write ``wild_corpus.jsonl``: a second labelled corpus, built apart from the redactor's tuning.

Run from the repository root: ``.venv/bin/python tests/data/make_wild_corpus.py``. Seeded and
deterministic for a given ``phonenumbers`` release; the output is committed. Each line is
``{"text": ..., "entities": [{"type": ..., "start": ..., "end": ...}]}`` with offsets computed
while the text is assembled, so they are exact.

It differs from ``make_redact_corpus.py`` on purpose: texts are whole documents (chat lines,
e-mails with signature blocks, web-form submissions, pasted ``.env`` / YAML / JSON / curl /
log snippets, markdown with links) put together from parts, not one-sentence templates.

* Phones start from ``phonenumbers.example_number_for_type`` for every supported region and
  several types (fixed line, mobile, toll free, VoIP, ...), with the last digits varied while
  ``phonenumbers`` still calls the number valid. Each is written in one of the library's
  formats (INTERNATIONAL, E164, RFC3966 inside ``tel:`` links, dialled from abroad with 00 or
  011) or by hand: regrouped with spaces, dots or dashes, the area code in parentheses, the
  trunk "(0)" kept, and sometimes an extension (``x123``, ``ext. 45``, ``#77``, ``;ext=12``).
  National forms (no country code) are written only for the desk's regions, the redactor's
  ``DEFAULT_REGIONS``: a number written nationally means nothing without knowing the country.
  The label covers the number and its extension, not the ``tel:`` scheme.
* Secrets: the formats of the major providers (AWS, Google, GitHub, GitLab, Slack, Stripe,
  OpenAI, Anthropic, Twilio, SendGrid, Discord, npm, PyPI, JWTs, PEM private key blocks,
  passwords in URLs, Azure connection strings) and generic ``key = value`` / ``key: value`` /
  JSON / shell / header assignments whose key names a secret. The label is the secret value
  (a whole PEM block; the password of a URL; the ``AccountKey`` of a connection string).
* E-mails, cards, IBANs, IPs and SSNs appear too, so every type is measured.
* Hard negatives, never labelled: parcel tracking numbers (UPS 1Z..., USPS 20-22 digits, DHL
  10 digits, FedEx 12 and 15 digits, all after a carrier or tracking word), order and invoice
  ids, dates and times, versions, amounts, hashes in prose, UUIDs, snowflakes, placeholders
  after secret-named keys (``api_key=YOUR_API_KEY``, ``password: ********``) and prose about
  passwords and tokens.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import random
import string
import uuid as uuid_module
from collections.abc import Callable
from pathlib import Path

import phonenumbers
from phonenumbers import PhoneNumberFormat, PhoneNumberType

SEED = 4417
TEXTS = 4000
OUT = Path(__file__).with_name("wild_corpus.jsonl")
# The regions a desk writes national numbers for: the redactor's DEFAULT_REGIONS.
DESK_REGIONS = ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "BR")
PHONE_TYPES = (
    PhoneNumberType.MOBILE,
    PhoneNumberType.MOBILE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.FIXED_LINE,
    PhoneNumberType.TOLL_FREE,
    PhoneNumberType.VOIP,
    PhoneNumberType.PERSONAL_NUMBER,
    PhoneNumberType.UAN,
)

rng = random.Random(SEED)
AN = string.ascii_letters + string.digits
B64URL = AN + "_-"
HEX = "0123456789abcdef"

# A piece of text and its label (None: not sensitive).
Part = tuple[str, str | None]


def pick(options: list[str] | tuple[str, ...]) -> str:
    return options[rng.randrange(len(options))]


def chars(count: int, alphabet: str = AN) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def digits(count: int) -> str:
    return chars(count, string.digits)


# --- phones -----------------------------------------------------------------------------------


def _examples() -> list[tuple[str, phonenumbers.PhoneNumber]]:
    found = []
    for region in sorted(phonenumbers.SUPPORTED_REGIONS):
        for kind in dict.fromkeys(PHONE_TYPES):
            example = phonenumbers.example_number_for_type(region, kind)
            if example is not None and phonenumbers.is_valid_number(example):
                found.append((region, example))
    return found


EXAMPLES = _examples()
DESK_EXAMPLES = [(region, number) for region, number in EXAMPLES if region in DESK_REGIONS]


def varied(number: phonenumbers.PhoneNumber) -> phonenumbers.PhoneNumber:
    """The example with its last 1-4 digits changed, if it stays valid (else the example)."""
    nsn = str(number.national_number)
    for _ in range(12):
        keep = len(nsn) - rng.randint(1, min(4, len(nsn) - 3))
        candidate = phonenumbers.PhoneNumber(
            country_code=number.country_code,
            national_number=int(nsn[:keep] + digits(len(nsn) - keep)),
            italian_leading_zero=number.italian_leading_zero,
            number_of_leading_zeros=number.number_of_leading_zeros,
        )
        if phonenumbers.is_valid_number(candidate):
            return candidate
    return number


def regroup(run: str, sep: str) -> str:
    """``run`` of digits split into groups of 2-4 (a hand-written grouping)."""
    groups, pos = [], 0
    while pos < len(run):
        left = len(run) - pos
        size = left if left <= 4 else rng.choice((2, 3, 3, 4, 4))
        if 0 < left - size < 2:
            size = left - 2 if size > 2 else left
        groups.append(run[pos : pos + size])
        pos += size
    return sep.join(groups)


def extension() -> str:
    ext = digits(rng.choice((2, 3, 3, 4)))
    return pick((f" x{ext}", f" ext. {ext}", f" ext {ext}", f" ext.{ext}", f" #{ext}", f" x {ext}"))


def national_text(region: str, number: phonenumbers.PhoneNumber) -> str:
    national = phonenumbers.format_number(number, PhoneNumberFormat.NATIONAL)
    run = "".join(char for char in national if char.isdigit())
    style = rng.randrange(7)
    if style <= 1:
        return national
    if style == 2:
        return run
    if style == 3 and region in {"US", "BR", "IN"} and national.startswith("("):
        area, rest = national.split(")", 1)
        rest_run = "".join(char for char in rest if char.isdigit())
        return f"{area}) {regroup(rest_run, pick(('-', ' ')))}"
    if style == 4 and region in {"US", "IN", "BR"}:
        return national.replace("(", "").replace(")", "").replace(" ", ".").replace("-", ".")
    return regroup(run, pick((" ", " ", "-", ".")))


def international_text(region: str, number: phonenumbers.PhoneNumber) -> str:
    code = number.country_code
    nsn = phonenumbers.national_significant_number(number)
    style = rng.randrange(9)
    if style <= 2:
        return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    if style == 3:
        return phonenumbers.format_number(number, PhoneNumberFormat.E164)
    if style == 4:
        home = pick(("US", "DE", "FR", "GB", "BR"))
        if phonenumbers.country_code_for_region(home) != code:
            return phonenumbers.format_out_of_country_calling_number(number, home)
        return phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
    if style == 5:
        intl = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        return intl.replace(" ", pick(("-", ".", " "))).replace("+" + str(code) + ".", f"+{code} ")
    if style == 6:
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
        if metadata is not None and metadata.national_prefix == "0" and nsn[0] != "0":
            return f"+{code} (0){regroup(nsn, ' ')}"
    return f"+{code} {regroup(nsn, pick((' ', ' ', '-', '.')))}"


def phone_parts(*, national_ok: bool = True) -> list[Part]:
    """A phone number as it is written somewhere in a ticket (the label excludes ``tel:``)."""
    if national_ok and rng.random() < 0.4:
        region, number = rng.choice(DESK_EXAMPLES)
        written = national_text(region, varied(number))
    else:
        region, number = rng.choice(EXAMPLES)
        number = varied(number)
        if rng.random() < 0.15:
            e164 = phonenumbers.format_number(number, PhoneNumberFormat.E164)
            rfc = phonenumbers.format_number(number, PhoneNumberFormat.RFC3966)[4:]
            value = pick((rfc, rfc, e164))
            if rng.random() < 0.2:
                value += f";ext={digits(3)}"
            label = pick(("call us", "Call me", "phone", "my cell", "support line", "☎"))
            if rng.random() < 0.5:
                return [(f"[{label}](tel:", None), (value, "PHONE"), (")", None)]
            return [('<a href="tel:', None), (value, "PHONE"), (f'">{label}</a>', None)]
        written = international_text(region, number)
    if rng.random() < 0.12:
        written += extension()
    return [(written, "PHONE")]


PHONE_LEADS = (
    "Call me on ", "You can reach me at ", "my number is ", "Phone: ", "Tel: ", "Mobile: ",
    "cell ", "M: ", "T: ", "Ph. ", "WhatsApp ", "text me at ", "my phone number is ",
    "Handy: ", "Telefon ", "Tél. ", "portable ", "Móvil: ", "celular ", "Contact number: ",
    "best number to call: ", "please call back on ", "I'm on ", "number: ", "tel ",
)  # fmt: skip


def phone_sentence() -> list[Part]:
    lead = pick(PHONE_LEADS)
    parts = phone_parts()
    if parts[0][0].startswith(("[", "<a")):
        lead = pick(("Here: ", "Details: ", "", "Reach me ", "Contact: "))
    tail = pick((".", "", " if that's easier.", " (after 6pm).", ", thanks!", " - anytime."))
    return [(lead, None), *parts, (tail, None)]


# --- other personal data ------------------------------------------------------------------------

NAMES = ("amelia", "noah", "kenji", "fatima", "olga", "diego", "priya", "tom", "zoe", "malik")
MAIL_DOMAINS = ("gmail.com", "proton.me", "outlook.de", "company.co.uk", "mail.example.org")


def email() -> str:
    name = pick(NAMES)
    local = pick((name, f"{name}.{pick(NAMES)}", f"{name}{digits(2)}", f"{name}+support"))
    return f"{local}@{pick(MAIL_DOMAINS)}"


def luhn_complete(body: str) -> str:
    total = 0
    for index, char in enumerate(reversed(body)):
        value = int(char) * (1 if index % 2 else 2)
        total += value - 9 if value > 9 else value
    return body + str((10 - total % 10) % 10)


def card() -> str:
    prefix, length = rng.choice(
        (("4", 16), ("51", 16), ("55", 16), ("2221", 16), ("34", 15), ("37", 15), ("6011", 16))
    )
    number = luhn_complete(prefix + digits(length - len(prefix) - 1))
    if length == 15:
        return pick((number, f"{number[:4]} {number[4:10]} {number[10:]}"))
    sep = pick(("", " ", "-", " "))
    return sep.join(number[i : i + 4] for i in range(0, 16, 4))


IBAN_SPECS = {"DE": 18, "FR": 23, "GB": 18, "ES": 20, "NL": 14, "IT": 23, "BE": 12, "AT": 16}


def iban() -> str:
    country = rng.choice(sorted(IBAN_SPECS))
    body = digits(IBAN_SPECS[country])
    if country in {"GB", "NL"}:
        body = chars(4, string.ascii_uppercase) + body[4:]
    numeric = "".join(str(int(char, 36)) for char in body + country + "00")
    compact = f"{country}{98 - int(numeric) % 97:02d}{body}"
    if rng.random() < 0.5:
        return compact
    return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))


def ip() -> str:
    if rng.random() < 0.7:
        return str(ipaddress.IPv4Address(rng.randrange(1 << 24, 223 << 24)))
    return str(ipaddress.IPv6Address((0x2001 << 112) | rng.getrandbits(96)))


def ssn() -> str:
    return f"{rng.randint(1, 665):03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


# --- secrets ------------------------------------------------------------------------------------


def b64(count: int) -> str:
    return base64.b64encode(rng.randbytes(count)).decode()


def jwt() -> str:
    def enc(raw: bytes) -> str:
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    head = enc(json.dumps({"alg": pick(("HS256", "RS256")), "typ": "JWT"}).encode())
    body = enc(json.dumps({"sub": digits(8), "exp": 1790000000 + rng.randrange(10**6)}).encode())
    return f"{head}.{body}.{enc(rng.randbytes(32))}"


def discord_token() -> str:
    user = str(rng.randrange(10**17, 10**18 * 9))
    head = base64.urlsafe_b64encode(user.encode()).decode().rstrip("=")
    return f"{head}.{chars(6, B64URL)}.{chars(38, B64URL)}"


def pem_block() -> str:
    kind = pick(("RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY"))
    body = base64.b64encode(rng.randbytes(rng.choice((120, 200, 300)))).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {kind}-----\n" + "\n".join(lines) + f"\n-----END {kind}-----"


PROVIDER_SECRETS: dict[str, Callable[[], str]] = {
    "aws_key_id": lambda: pick(("AKIA", "ASIA")) + chars(16, string.ascii_uppercase + "234567"),
    "google_api": lambda: "AIza" + chars(35, B64URL),
    "google_oauth": lambda: "ya29." + chars(rng.randint(60, 140), B64URL),
    "github": lambda: pick(("ghp_", "gho_", "ghu_", "ghs_", "ghr_")) + chars(36),
    "github_pat": lambda: f"github_pat_{chars(22)}_{chars(59)}",
    "gitlab": lambda: "glpat-" + chars(20, B64URL),
    "slack": lambda: (
        f"{pick(('xoxb', 'xoxp', 'xoxa', 'xoxr'))}-{digits(12)}-{digits(13)}-{chars(24)}"
    ),
    "stripe": lambda: pick(("sk_live_", "rk_live_", "pk_live_", "sk_test_")) + chars(24),
    "stripe_webhook": lambda: "whsec_" + chars(32),
    "openai": lambda: pick(("sk-" + chars(48), "sk-proj-" + chars(rng.randint(80, 156), B64URL))),
    "anthropic": lambda: "sk-ant-api03-" + chars(93, B64URL) + "AA",
    "twilio": lambda: "SK" + chars(32, HEX),
    "sendgrid": lambda: f"SG.{chars(22, B64URL)}.{chars(43, B64URL)}",
    "discord": discord_token,
    "npm": lambda: "npm_" + chars(36),
    "pypi": lambda: "pypi-AgEIcHlwaS5vcmc" + chars(rng.randint(60, 120), B64URL),
    "jwt": jwt,
}


def password() -> str:
    """What people choose: words with digits and symbols, or a generator's random string."""
    style = rng.randrange(3)
    if style == 0:
        word = pick(("Summer", "Welcome", "Dragon", "Coffee", "Monkey", "Berlin", "Sunshine"))
        return word + str(rng.randint(1, 2026)) + pick(("!", "#", "$", "?", "", "@"))
    if style == 1:
        return chars(rng.randint(12, 24), AN + "!@#$%^&*-_")
    return f"{chars(4)}-{chars(4)}-{chars(4)}"


def url_password() -> str:
    """A password as it can stand in a URL's user info (no "@", "#" or "%")."""
    return password().replace("@", "!").replace("#", "!").replace("%", "!")


def generic_value(key: str) -> str:
    if "pass" in key or key in {"pwd", "PGPASSWORD"}:
        return password()
    return pick(
        (
            chars(32, HEX),
            chars(40, HEX),
            chars(rng.randint(20, 40)),
            b64(rng.choice((24, 32, 48))),
            chars(rng.randint(24, 44), B64URL),
        )
    )


SECRET_KEYS = (
    "password", "passwd", "pwd", "db_password", "DB_PASSWORD", "secret", "client_secret",
    "CLIENT_SECRET", "token", "auth_token", "access_token", "refresh_token", "api_key",
    "apiKey", "apikey", "API_KEY", "access_key", "secret_key", "SECRET_KEY", "private_key",
    "auth", "x-api-key", "TWILIO_AUTH_TOKEN", "aws_secret_access_key", "AWS_SECRET_ACCESS_KEY",
    "webhook_secret", "signing_secret", "bot_token", "DISCORD_TOKEN", "app_password",
)  # fmt: skip


def assignment(key: str, value: str) -> list[Part]:
    """``key`` set to ``value`` in one of the forms configuration and code use."""
    if key.startswith(("aws_secret", "AWS_SECRET")):
        value = b64(30)
    form = rng.randrange(9)
    if form == 0:
        return [(f"{key}=", None), (value, "SECRET")]
    if form == 1:
        return [(f"{key} = ", None), (value, "SECRET")]
    if form == 2:
        return [(f"{key}: ", None), (value, "SECRET")]
    if form == 3:
        return [(f'"{key}": "', None), (value, "SECRET"), ('"', None)]
    if form == 4:
        return [(f'{key} = "', None), (value, "SECRET"), ('"', None)]
    if form == 5:
        return [(f"export {key.upper()}='", None), (value, "SECRET"), ("'", None)]
    if form == 6:
        return [(f"{key}: '", None), (value, "SECRET"), ("'", None)]
    if form == 7:
        return [(f"--{key.lower().replace('_', '-')} ", None), (value, "SECRET")]
    return [(f"{key}:", None), (value, "SECRET")]


def provider_secret_parts() -> list[Part]:
    kind = rng.choice(sorted(PROVIDER_SECRETS))
    value = PROVIDER_SECRETS[kind]()
    style = rng.randrange(4)
    if style == 0:
        key = {
            "aws_key_id": "aws_access_key_id", "google_api": "GOOGLE_API_KEY",
            "google_oauth": "access_token", "github": "GITHUB_TOKEN", "github_pat": "GH_TOKEN",
            "gitlab": "GITLAB_TOKEN", "slack": "SLACK_BOT_TOKEN", "stripe": "STRIPE_KEY",
            "stripe_webhook": "STRIPE_WEBHOOK_SECRET", "openai": "OPENAI_API_KEY",
            "anthropic": "ANTHROPIC_API_KEY", "twilio": "TWILIO_API_KEY",
            "sendgrid": "SENDGRID_API_KEY", "discord": "DISCORD_TOKEN", "npm": "NPM_TOKEN",
            "pypi": "PYPI_TOKEN", "jwt": "token",
        }[kind]  # fmt: skip
        return assignment(key, value)
    if style == 1:
        return [
            (pick(("I accidentally pasted ", "oops, that was my key: ", "key ")), None),
            (value, "SECRET"),
            (pick((" - please delete!", "", ".", " sorry")), None),
        ]
    if style == 2:
        return [("`", None), (value, "SECRET"), ("`", None)]
    return [("Authorization: Bearer ", None), (value, "SECRET")]


def structured_secret_parts() -> list[Part]:
    style = rng.randrange(5)
    if style == 0:
        return [("```\n", None), (pem_block(), "SECRET"), ("\n```", None)]
    if style == 1:
        user = pick(("admin", "deploy", "app", pick(NAMES)))
        host = pick(
            ("db.internal.example.net", "api.example.com", "pg.internal:5432", "redis:6379")
        )
        scheme = pick(("https", "postgres", "mysql", "redis", "amqp", "mongodb+srv"))
        return [(f"{scheme}://{user}:", None), (url_password(), "SECRET"), (f"@{host}/app", None)]
    if style == 2:
        return [
            (f"DefaultEndpointsProtocol=https;AccountName={pick(NAMES)}store;AccountKey=", None),
            (b64(64), "SECRET"),
            (";EndpointSuffix=core.windows.net", None),
        ]
    if style == 3:
        return [
            (f"Endpoint=sb://{pick(NAMES)}-bus.servicebus.windows.net/;"
             "SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=", None),
            (b64(32), "SECRET"),
        ]  # fmt: skip
    key = pick(SECRET_KEYS)
    return assignment(key, generic_value(key))


# --- hard negatives -----------------------------------------------------------------------------


def tracking() -> str:
    carrier = rng.randrange(6)
    if carrier == 0:
        return f"UPS tracking 1Z{chars(6, string.ascii_uppercase + string.digits)}{digits(10)}"
    if carrier == 1:
        number = pick(("9400", "9205", "9361", "9270")) + digits(rng.choice((16, 18)))
        if rng.random() < 0.5:
            number = " ".join(number[i : i + 4] for i in range(0, len(number), 4))
        return f"{pick(('USPS tracking', 'USPS', 'tracking #'))} {number}"
    if carrier == 2:
        return f"{pick(('DHL waybill', 'DHL tracking', 'DHL Sendungsnummer'))} {digits(10)}"
    if carrier == 3:
        return f"{pick(('FedEx tracking', 'FedEx #', 'FedEx'))} {digits(rng.choice((12, 15)))}"
    if carrier == 4:
        return f"tracking number {pick(('JJD', 'JVGL'))}{digits(18)}"
    return f"Sendungsverfolgung {digits(12)}"


def negative() -> str:
    kind = rng.randrange(16)
    if kind <= 2:
        return tracking()
    if kind == 3:
        return pick(
            (
                f"order #{rng.randint(1000, 99999)}",
                f"order {digits(3)}-{digits(7)}-{digits(7)}",
                f"Order ID: {digits(10)}",
                f"invoice INV-{rng.randint(2020, 2026)}-{digits(6)}",
                f"invoice no. {digits(9)}",
                f"Rechnung Nr. {digits(10)}",
                f"PO {digits(8)}",
                f"case {digits(8)}",
            )
        )
    if kind == 4:
        day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(2019, 2027)
        return pick(
            (
                f"{year}-{month:02d}-{day:02d}",
                f"{day:02d}.{month:02d}.{year}",
                f"{month}/{day}/{year}",
                f"{day:02d}/{month:02d}/{year} {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}",
                f"{year}-{month:02d}-{day:02d}T{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}"
                f":{rng.randint(0, 59):02d}Z",
                f"{year}{month:02d}{day:02d}",
            )
        )
    if kind == 5:
        return pick(
            (
                f"v{rng.randint(1, 30)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}",
                f"version {rng.randint(1, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 9999)}",
                f"build {rng.randint(10, 30)}.{rng.randint(1, 12)}.{rng.randint(1000, 9999)}",
                f"Chrome/{rng.randint(100, 131)}.0.{rng.randint(4000, 6999)}.{rng.randint(1, 200)}",
                f"iOS {rng.randint(14, 18)}.{rng.randint(0, 7)}.{rng.randint(0, 3)}",
            )
        )
    if kind == 6:
        return pick(
            (
                f"${rng.randint(1, 9)},{digits(3)}.{digits(2)}",
                f"€{rng.randint(10, 9999)},{digits(2)}",
                f"USD {rng.randint(100, 999999):,}.{digits(2)}",
                f"{rng.randint(1, 999)} {digits(3)},{digits(2)} €",
                f"R$ {rng.randint(1, 99)}.{digits(3)},{digits(2)}",
            )
        )
    if kind == 7:
        sha = hashlib.sha1(rng.randbytes(8)).hexdigest()
        return pick(
            (
                f"commit {sha}",
                f"fixed in {sha[:7]}",
                f"sha256 {hashlib.sha256(rng.randbytes(8)).hexdigest()}",
                f"md5 {hashlib.md5(rng.randbytes(8), usedforsecurity=False).hexdigest()}",
                f"checksum: {hashlib.sha256(rng.randbytes(8)).hexdigest()}",
            )
        )
    if kind == 8:
        value = str(uuid_module.UUID(int=rng.getrandbits(128), version=4))
        return pick((f"request id {value}", f"trace_id: {value}", f"correlation-id={value}"))
    if kind == 9:
        return pick(
            (
                f"message {rng.randrange(10**17, 10**19)}",
                f"<@{rng.randrange(10**17, 10**19)}>",
                f"user id {rng.randrange(10**17, 10**19)}",
            )
        )
    if kind == 10:
        return pick(
            (
                "api_key=YOUR_API_KEY",
                "password: ********",
                "token: <redacted>",
                "password = os.environ['DB_PASSWORD']",
                'password: ""',
                "API_KEY=<your-key-here>",
                "token: null",
                "secret: ${{ secrets.DEPLOY_KEY }}",
                "client_secret=xxxxxxxxxxxxxxxx",
                "auth: oauth2",
                "password: [hidden]",
                "token=...",
                "api_key: changeme",
                '"password": "REDACTED"',
            )
        )
    if kind == 11:
        return pick(
            (
                "my password is not working",
                "the token expired yesterday",
                "Password reset link is broken",
                "I reset my API key twice",
                "secret santa event",
                "the auth token refresh fails",
                "forgot password: nothing arrives",
                "token: expired",
                "password: incorrect every time",
            )
        )
    if kind == 12:
        return pick(
            (
                f"serial number {chars(3, string.ascii_uppercase)}{digits(9)}",
                f"IMEI {digits(15)}",
                f"SKU {digits(12)}",
                f"EAN {digits(13)}",
                f"ISBN 978-{digits(1)}-{digits(3)}-{digits(5)}-{digits(1)}",
            )
        )
    if kind == 13:
        return pick(
            (
                f"{rng.randint(1, 12)}:{rng.randint(0, 59):02d} pm",
                f"between {rng.randint(8, 11)}:00 and {rng.randint(12, 18)}:30",
                f"{rng.randint(100, 999)} items",
                f"{rng.randint(1000, 99999)} ms latency",
                f"port {rng.randint(1024, 65535)}",
            )
        )
    if kind == 14:
        return pick(
            (
                f"error 0x{chars(8, '0123456789ABCDEF')}",
                f"exit code {rng.randint(1, 255)}",
                f"HTTP {pick(('401', '403', '429', '500', '502'))}",
                f"ref {chars(2, string.ascii_uppercase)}{digits(8)}",
            )
        )
    return pick(
        (
            f"Ticket-{digits(5)}",
            f"account {digits(8)}",
            f"customer no. {digits(7)}",
            f"booking {chars(6, string.ascii_uppercase + string.digits)}",
        )
    )


# --- documents ----------------------------------------------------------------------------------

GREETINGS = (
    "Hi team,",
    "Hello,",
    "Hey",
    "Good morning,",
    "Hallo,",
    "Bonjour,",
    "Hola,",
    "Dear support,",
)
SIGN_OFFS = ("Thanks,", "Best regards,", "Cheers,", "Viele Grüße,", "Merci,", "Saludos,")
ISSUES = (
    "the bot stopped answering in our server",
    "my refund has not arrived",
    "the ticket closed by itself",
    "I was charged twice this month",
    "the webhook stopped firing after the update",
    "I can't log in since yesterday",
    "the escalation never reached #ops",
    "your app crashes when I open settings",
)  # fmt: skip


class Doc:
    def __init__(self) -> None:
        self.parts: list[Part] = []

    def add(self, *parts: Part) -> None:
        self.parts.extend(parts)

    def text(self, text: str) -> None:
        self.parts.append((text, None))

    def row(self) -> dict[str, object]:
        out, entities, pos = [], [], 0
        for text, kind in self.parts:
            if kind is not None:
                entities.append({"type": kind, "start": pos, "end": pos + len(text)})
            out.append(text)
            pos += len(text)
        return {"text": "".join(out), "entities": entities}


def mention_negatives(doc: Doc, count: int) -> None:
    for _ in range(count):
        doc.text(
            pick(
                (
                    f" Also, {negative()}.",
                    f" ({negative()})",
                    f" FYI: {negative()}.",
                    f" Ref: {negative()}.",
                    f" {negative()} -",
                    f"\n> {negative()}",
                )
            )
        )


def other_pii(doc: Doc) -> None:
    kind = rng.randrange(5)
    if kind == 0:
        doc.add(
            (pick((" Email me at ", " my email: ", " cc ", " Login: ")), None), (email(), "EMAIL")
        )
    elif kind == 1:
        doc.add(
            (pick((" I paid with card ", " card no. ", " Visa ", " charged to ")), None),
            (card(), "CARD"),
        )
    elif kind == 2:
        doc.add(
            (pick((" Refund to IBAN ", " IBAN: ", " my account ", " Konto ")), None),
            (iban(), "IBAN"),
        )
    elif kind == 3:
        doc.add((pick((" My IP is ", " from ", " client ip=", " blocked: ")), None), (ip(), "IP"))
    else:
        doc.add(
            (pick((" SSN ", " for the W-9: ", " social security number ")), None), (ssn(), "SSN")
        )
    doc.text(pick((".", "", " thanks.", ";")))


def chat(doc: Doc, content: Callable[[Doc], None]) -> None:
    doc.text(pick(("hey ", "yo, ", "", "pls help - ", "@Support ")) + pick(ISSUES) + ". ")
    content(doc)
    mention_negatives(doc, rng.randint(0, 2))


def mail(doc: Doc, content: Callable[[Doc], None]) -> None:
    doc.text(f"{pick(GREETINGS)}\n\n{pick(ISSUES).capitalize()}.")
    mention_negatives(doc, rng.randint(0, 2))
    doc.text("\n")
    content(doc)
    doc.text(f"\n\n{pick(SIGN_OFFS)}\n{pick(NAMES).capitalize()} {pick(NAMES).capitalize()}\n")
    if rng.random() < 0.5:
        doc.text(pick(("Acme GmbH | ", "Head of IT, ", "")) + pick(("Berlin", "Leeds", "Lyon")))


def signature(doc: Doc) -> None:
    """An e-mail signature block: the phone behind a one-letter or short label."""
    name = f"{pick(NAMES).capitalize()} {pick(NAMES).capitalize()}"
    doc.text(f"{pick(GREETINGS)} {pick(ISSUES)}.\n\n-- \n{name}\n")
    for label in rng.sample(("T: ", "M: ", "Mob: ", "Tel ", "Direct: ", "Office: ", "Fax: "), 2):
        doc.text(label)
        doc.add(*phone_parts())
        doc.text("\n")
    if rng.random() < 0.5:
        doc.text(pick(("E: ", "Mail: ")))
        doc.add((email(), "EMAIL"))
    mention_negatives(doc, rng.randint(0, 1))


def form(doc: Doc) -> None:
    """A web form submission, one field per line."""
    doc.text(f"Name: {pick(NAMES).capitalize()}\n")
    doc.text(pick(("Phone: ", "Phone number: ", "Telefonnummer: ", "Contact: ", "Mobile number: ")))
    doc.add(*phone_parts())
    doc.text(f"\n{pick(('Order', 'Order number', 'Bestellung'))}: {digits(rng.choice((6, 8, 10)))}")
    doc.text(f"\nTopic: {pick(ISSUES)}\nMessage: ")
    mention_negatives(doc, rng.randint(1, 2))


def snippet(doc: Doc, secret: Callable[[], list[Part]]) -> None:
    """A pasted config, log or command with the secret inside."""
    kind = rng.randrange(5)
    doc.text(pick(("here is my config:\n", "Log below\n", "I'm running\n", "settings.yml:\n", "")))
    if kind == 0:
        doc.text("```env\nNODE_ENV=production\nPORT=8080\n")
        doc.add(*secret())
        doc.text("\nLOG_LEVEL=debug\n```")
    elif kind == 1:
        doc.text("```yaml\nbot:\n  name: thoth\n  ")
        doc.add(*secret())
        doc.text(f"\n  timeout: {rng.randint(5, 60)}\n```")
    elif kind == 2:
        doc.text('{\n  "endpoint": "https://api.example.com/v2",\n  ')
        doc.add(*secret())
        doc.text(f',\n  "retries": {rng.randint(1, 5)}\n}}')
    elif kind == 3:
        doc.text("$ curl -s https://api.example.com/v1/items \\\n    -d '")
        doc.add(*secret())
        doc.text("'")
    else:
        doc.text(f"{negative()} INFO worker started\n{negative()} ERROR auth failed with ")
        doc.add(*secret())
    mention_negatives(doc, rng.randint(0, 2))


def phone_doc(doc: Doc) -> None:
    shape = rng.randrange(4)
    if shape == 0:
        chat(doc, lambda d: d.add(*phone_sentence()))
    elif shape == 1:
        mail(doc, lambda d: d.add(*phone_sentence()))
    elif shape == 2:
        signature(doc)
    else:
        form(doc)


def secret_doc(doc: Doc) -> None:
    source = provider_secret_parts if rng.random() < 0.55 else structured_secret_parts
    if rng.random() < 0.6:
        snippet(doc, source)
    else:
        chat(doc, lambda d: d.add(*source()))


def pii_doc(doc: Doc) -> None:
    chat(doc, other_pii) if rng.random() < 0.5 else mail(doc, other_pii)


def negative_doc(doc: Doc) -> None:
    shape = rng.randrange(3)
    if shape == 0:
        chat(doc, lambda d: mention_negatives(d, 2))
    elif shape == 1:
        mail(doc, lambda d: mention_negatives(d, 3))
    else:
        doc.text(f"Order ID: {digits(10)}\nTopic: {pick(ISSUES)}\nMessage:")
        mention_negatives(doc, 3)


def main() -> None:
    builders = [phone_doc] * 35 + [secret_doc] * 30 + [pii_doc] * 10 + [negative_doc] * 25
    with OUT.open("w", encoding="utf-8") as out:
        for _ in range(TEXTS):
            doc = Doc()
            rng.choice(builders)(doc)
            if rng.random() < 0.1:  # a second finding of another kind, in a reply below
                doc.text("\n\n")
                rng.choice((phone_doc, secret_doc, pii_doc))(doc)
            out.write(json.dumps(doc.row(), ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
