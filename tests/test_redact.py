"""thothbot.core.redact: per-type detection, the tricky negatives, overlaps and the corpus."""

from __future__ import annotations

import itertools
import json
import random
from collections import Counter
from pathlib import Path

import phonenumbers
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from phonenumbers import CountryCodeSource

from thothbot.core.redact import (
    DEFAULT_REGIONS,
    Entity,
    EntityType,
    Redaction,
    Redactor,
    redact,
)

DATA = Path(__file__).parent / "data"
CORPUS = DATA / "redact_corpus.jsonl"
# Written by a second generator, apart from the redactor's tuning (see make_wild_corpus.py).
WILD_CORPUS = DATA / "wild_corpus.jsonl"
REDACTOR = Redactor()


def found(text: str, redactor: Redactor = REDACTOR) -> list[tuple[str, str]]:
    return [(e.type.value, text[e.start : e.end]) for e in redactor.find(text)]


def only(kind: EntityType, value: str, text: str) -> None:
    assert found(text) == [(kind.value, value)], text


# --- positives, one type at a time ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Please reply to jane.doe@example.com, thanks", "jane.doe@example.com"),
        ("mail me: <lukas.mueller+shop@web.de>", "lukas.mueller+shop@web.de"),
        ("Send it to mailto:ana_silva77@uol.com.br please", "ana_silva77@uol.com.br"),
        ("JOHN.SMITH@MAIL.EXAMPLE.ORG is my login.", "JOHN.SMITH@MAIL.EXAMPLE.ORG"),
        ("o'brien@example.ie wrote this", "o'brien@example.ie"),
    ],
)
def test_email(text: str, value: str) -> None:
    only(EntityType.EMAIL, value, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("Call me at (201) 555-0123 after 5pm", "(201) 555-0123"),
        ("call me on 201-555-0123", "201-555-0123"),
        ("text me at 2015550123", "2015550123"),
        ("call 1-800-273-8255 now", "1-800-273-8255"),
        ("ring 020 7946 0958 tomorrow", "020 7946 0958"),
        ("my mobile: 07400 123456", "07400 123456"),
        ("Meine Handynummer ist 01512 3456789.", "01512 3456789"),
        ("Tel. 030 12345678", "030 12345678"),
        ("Mon portable : 06 12 34 56 78.", "06 12 34 56 78"),
        ("Vous pouvez me joindre au 01.23.45.67.89", "01.23.45.67.89"),
        ("Mi móvil es el 612 34 56 78.", "612 34 56 78"),
        ("chiamami al 312 345 6789", "312 345 6789"),
        ("bel me op 06 12345678", "06 12345678"),
        ("call me on 081234 56789", "081234 56789"),
        ("Meu celular é (11) 96123-4567.", "(11) 96123-4567"),
        ("+44 20 7946 0958 is the office", "+44 20 7946 0958"),
        ("Tel.: +49 (0)30 123456", "+49 (0)30 123456"),
        ("WhatsApp +5511961234567", "+5511961234567"),
        ("reach me: +91 81234 56789", "+91 81234 56789"),
        ("Rückruf an 0049 30 123456 bitte", "0049 30 123456"),
        ("+39 02 1234 5678 (Milano)", "+39 02 1234 5678"),
        ("+31 10 123 4567", "+31 10 123 4567"),
        ("+34 612 34 56 78", "+34 612 34 56 78"),
        ("+33 6 12 34 56 78", "+33 6 12 34 56 78"),
        ("+1 (415) 555-2671", "+1 (415) 555-2671"),
    ],
)
def test_phone(text: str, value: str) -> None:
    only(EntityType.PHONE, value, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("visa 4111 1111 1111 1111 exp 12/27", "4111 1111 1111 1111"),
        ("visa 4111-1111-1111-1111", "4111-1111-1111-1111"),
        ("old visa 4222222222222", "4222222222222"),
        ("mastercard 5555555555554444", "5555555555554444"),
        ("mastercard 2-series 2223 0000 4840 0011", "2223 0000 4840 0011"),
        ("amex 3782 822463 10005", "3782 822463 10005"),
        ("amex 378282246310005", "378282246310005"),
        ("discover 6011 1111 1111 1117", "6011 1111 1111 1117"),
        ("jcb 3530111333300000", "3530111333300000"),
        ("diners 3056 930902 5904", "3056 930902 5904"),
        ("unionpay 6200 0000 0000 0005", "6200 0000 0000 0005"),
        ("maestro 6759 6498 2643 8453", "6759 6498 2643 8453"),
        ("visa 19: 4111 1111 1111 1111 003", "4111 1111 1111 1111 003"),
        ("card 4000000000000000006 (19 digits, called a card)", "4000000000000000006"),
        ("qty 2 4111 1111 1111 1111", "4111 1111 1111 1111"),
    ],
)
def test_card(text: str, value: str) -> None:
    only(EntityType.CARD, value, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("IBAN DE89 3704 0044 0532 0130 00 please", "DE89 3704 0044 0532 0130 00"),
        ("IBAN DE89370400440532013000.", "DE89370400440532013000"),
        ("GB29 NWBK 6016 1331 9268 19", "GB29 NWBK 6016 1331 9268 19"),
        ("RIB : FR1420041010050500013M02606", "FR1420041010050500013M02606"),
        ("NL91 ABNA 0417 1643 00", "NL91 ABNA 0417 1643 00"),
        ("IT60 X054 2811 1010 0000 0123 456", "IT60 X054 2811 1010 0000 0123 456"),
        ("ES91 2100 0418 4502 0005 1332", "ES91 2100 0418 4502 0005 1332"),
        ("BE68539007547034", "BE68539007547034"),
        ("NO9386011117947", "NO9386011117947"),
    ],
)
def test_iban(text: str, value: str) -> None:
    only(EntityType.IBAN, value, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("my IP is 203.0.113.7.", "203.0.113.7"),
        ("IP:10.0.0.1 blocked", "10.0.0.1"),
        ("dashboard at http://192.168.1.20:8080/ is down", "192.168.1.20"),
        ("ipv6 2001:db8:85a3::8a2e:370:7334.", "2001:db8:85a3::8a2e:370:7334"),
        ("link-local fe80::1%eth0 here", "fe80::1%eth0"),
        ("full 2001:0db8:0000:0000:0000:ff00:0042:8329", "2001:0db8:0000:0000:0000:ff00:0042:8329"),
        ("panel at [2a02:8108:1a40::17]:443", "2a02:8108:1a40::17"),
        ("mapped ::ffff:192.0.2.128 now", "::ffff:192.0.2.128"),
    ],
)
def test_ip(text: str, value: str) -> None:
    only(EntityType.IP, value, text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("For the tax form: 078-05-1120.", "078-05-1120"),
        ("Verification failed for 123-45-6789, wrong format?", "123-45-6789"),
        ("my SSN is 078051120", "078051120"),
        ("social security number 078 05 1120", "078 05 1120"),
    ],
)
def test_ssn(text: str, value: str) -> None:
    only(EntityType.SSN, value, text)


DISCORD_TOKEN = "MTE0MTIwNDgzMjEwMzg0NTkxOA.GhXyZa.abcdefghijklmnopqrstuvwxyz0123456789AB"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U"
)


@pytest.mark.parametrize(
    "value",
    [
        DISCORD_TOKEN,
        "sk-" + "A1b2C3d4" * 6,
        "sk-proj-" + "Ab3_xY9-" * 8,
        "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
        "gho_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghs_16C7e42F292c6912E7710c838347Ae178B4a",
        "ghr_16C7e42F292c6912E7710c838347Ae178B4a",
        "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ012",
        "xoxb-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxp-123456789012-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx",
        "xoxa-2-123456789012-AbCdEfGhIjKlMnOpQrStUvWx",
        "xapp-1-A0123456789-1234567890123-" + "0123456789abcdef" * 4,
        "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX",
        "https://discord.com/api/webhooks/1141204832103845918/" + "aB3_-x" * 11,
        "sk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
        "rk_live_4eC39HqLyjWDarjtT1zdp7dc",
        "pk_live_TYooMQauvdEDq54NiTphI7jx",
        "AKIAIOSFODNN7EXAMPLE",
        "ASIAIOSFODNN7EXAMPLE",
        JWT,
    ],
)
def test_secret(value: str) -> None:
    only(EntityType.SECRET, value, f"I pasted my key {value} by mistake, please help")


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer abc123def456ghi789jkl",
        "curl -H 'Authorization: Bearer abc123def456ghi789jkl' https://api.example.com",
        "BEARER abc123def456ghi789jkl",
    ],
)
def test_bearer_value_is_the_secret(text: str) -> None:
    only(EntityType.SECRET, "abc123def456ghi789jkl", text)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        # tel: links: the number, without the scheme
        ("[call us](tel:+1-201-555-0123)", "+1-201-555-0123"),
        ('<a href="tel:+442079460958">phone</a>', "+442079460958"),
        ("tel:+44-20-7946-0958;ext=123 is our line", "+44-20-7946-0958;ext=123"),
        # extensions belong to the number
        ("Phone: +1 201-555-0123 x881", "+1 201-555-0123 x881"),
        ("call 020 7946 0958 ext. 45", "020 7946 0958 ext. 45"),
        ("Office: 0812-345-6788 #0846", "0812-345-6788 #0846"),
        ("call +1 201-555-0123x12 please", "+1 201-555-0123x12"),
        ("call +1 201-555-0123 (ext. 204) today", "+1 201-555-0123 (ext. 204)"),
        ("Tel: 030 1234567, ext: 12", "030 1234567, ext: 12"),
        # a North American number without its area code, after a phone word
        ("phone 555-0123", "555-0123"),
        # groupings written by hand
        ("Mobile: 0151 234 56789", "0151 234 56789"),
        ("M: 06.12.34.56.78", "06.12.34.56.78"),
        ("Handy: 074.001.279.32", "074.001.279.32"),
        ("my number is 201.555.0123", "201.555.0123"),
        ("Ph. 074104.17251", "074104.17251"),
        ("+46 701.234.563", "+46 701.234.563"),
        ("+44 (0)20 7946 0958", "+44 (0)20 7946 0958"),
        # dialled from abroad
        ("call back on 011 44 20 7946 0958", "011 44 20 7946 0958"),
        ("Rückruf 00 33 1 23 45 67 89", "00 33 1 23 45 67 89"),
        # short numbers, only right after a phone word
        ("Telefonnummer: 14 020", "14 020"),
        ("Tel +683 7017", "+683 7017"),
        ("Fax: 0800 1234 5678 97", "0800 1234 5678 97"),
        # signature labels and "number"
        ("-- \nJane Doe\nM: 701234532\n", "701234532"),
        ("Direct: 2015550123", "2015550123"),
        # SSN-shaped after a phone word
        ("WhatsApp 701-23-6068.", "701-23-6068"),
    ],
)
def test_phone_as_written_in_the_wild(text: str, value: str) -> None:
    only(EntityType.PHONE, value, text)


@pytest.mark.parametrize(
    "value",
    [
        "AIzaSyD-9tSrke72PouQMnMX-a7eZSW0jkFMBWY",  # Google API key
        "ya29.a0AfH6SMBx3kq9Wc-EXAMPLEexampleEXAMPLE_example1234",  # Google OAuth
        "glpat-xq3Kz9LmN2pQrS7tUv8W",  # GitLab
        "SK2c8f6f1e0c4a4b8d9e7f6a5b4c3d2e1f",  # Twilio API key
        "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",  # SendGrid
        "npm_1a2B3c4D5e6F7g8H9i0J1k2L3m4N5o6P7q8R",  # npm
        "pypi-AgEIcHlwaS5vcmcCJDU3OTM1MjliLTViMWQtNDQ4Ny05ZjI2LWJhZWI0ZmQzZGVmZQ",  # PyPI
        "sk-ant-api03-" + "Ab3_xY9-" * 11 + "AA",  # Anthropic
        "rk_live_51H8abcdEFGHijklMNOPqrst",  # Stripe restricted key
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",  # Stripe / Standard Webhooks secret
        "AROAIOSFODNN7EXAMPLE",  # AWS role id
        "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH",  # Hugging Face
    ],
)
def test_provider_secret(value: str) -> None:
    only(EntityType.SECRET, value, f"oops, I pasted {value} here")


PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA3Tz2mr7SZiAMfQyuvBjM9Oi0PZfZG7jL8a1bn5aVR0L1Bf2P\n"
    "q8xTm3AfYwR7sC3n0UaE1+2Hn4u6m2w==\n"
    "-----END RSA PRIVATE KEY-----"
)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("api_key=Zx8Kq2mN4pL7vR1tY6wB", "Zx8Kq2mN4pL7vR1tY6wB"),
        ("token: 9f86d081884c7d659a2feaa0c55ad015", "9f86d081884c7d659a2feaa0c55ad015"),
        ('password = "Summer2024!"', "Summer2024!"),
        ('{"client_secret": "p9Q~x7Rk2Lm5Nv8Zt3Yw"}', "p9Q~x7Rk2Lm5Nv8Zt3Yw"),
        ("export DB_PASSWORD='Tr0ub4dor&3'", "Tr0ub4dor&3"),
        ("PGPASSWORD=hunter2x", "hunter2x"),
        (
            "aws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        ),
        ("x-api-key: Hq3vZ8mK1pR6tW9yB2nD5", "Hq3vZ8mK1pR6tW9yB2nD5"),
        ("mytool --db-password Tr0ub4dor&3 --verbose", "Tr0ub4dor&3"),
        ("apiKey: 'AbCdEf123456GhIjKl'", "AbCdEf123456GhIjKl"),
        ("postgres://app:Welcome1083?@db.internal:5432/app", "Welcome1083?"),
        ("https://deploy:SvRv-uqRj-mnvB@pg.internal/app", "SvRv-uqRj-mnvB"),
        (
            "DefaultEndpointsProtocol=https;AccountName=acme;AccountKey=Zm9vYmFyYmF6cXV4MTIzNDU2"
            "Nzg5MGFiY2RlZg==;EndpointSuffix=core.windows.net",
            "Zm9vYmFyYmF6cXV4MTIzNDU2Nzg5MGFiY2RlZg==",
        ),
        ("Authorization: Basic dXNlcjpQYXNzdzByZDEyMw==", "dXNlcjpQYXNzdzByZDEyMw=="),
        (f"my key:\n{PEM}\nsorry", PEM),
        ("my password is Summer2024! sorry", "Summer2024!"),
        ("my token is 9f86d081884c7d659a2feaa0c55ad015", "9f86d081884c7d659a2feaa0c55ad015"),
        ("curl -u admin:Sup3rS3cret! https://api.example.com", "Sup3rS3cret!"),
        ("Passwort: Sommer2024!", "Sommer2024!"),
        ("Mot de passe : Bonjour2024!", "Bonjour2024!"),
        ("contraseña: Verano2024!", "Verano2024!"),
        ("<password>Tr0ub4dor&amp;3</password>", "Tr0ub4dor&amp;3"),
        ("SECRET_KEY = 'x9$k!2m@q#7w%e^r&t*y(u)i-o_p+'", "x9$k!2m@q#7w%e^r&t*y(u)i-o_p+"),
        ("client_secret=Dragon1144!", "Dragon1144!"),
    ],
)
def test_secret_assigned_or_embedded(text: str, value: str) -> None:
    only(EntityType.SECRET, value, text)


@pytest.mark.parametrize(
    "text",
    [
        "my password is not working",
        "Password: incorrect every time",
        "Password: Forgotten",
        "the token expired yesterday; token: expired",
        "api_key=YOUR_API_KEY",
        "API_KEY=<your-key-here>",
        "password: ********",
        "token: <redacted>",
        "password = os.environ['DB_PASSWORD']",
        'password: ""',
        "secret: ${{ secrets.DEPLOY_KEY }}",
        "client_secret=xxxxxxxxxxxxxxxx",
        "auth: oauth2",
        "password: [hidden]",
        "token=...",
        "api_key: changeme",
        '"password": "REDACTED"',
        "db_password=$DB_PASSWORD",
        "token_type: bearer, expires_in: 3600, max_tokens=4096",
        "password_reset_url: https://example.com/reset?id=Ab12Cd34Ef56Gh78",
        "trace_id: 0525e1f0-c4cf-42ca-a0eb-a91d2371e616, sha256: e3b0c44298fc1c149afbf4c8996fb924",
        "postgres://user:password@db.internal/app and https://docs.example.com/a:b@c",
        "the key=value pairs and keyboard: LogitechMX2024",
        "the password is incorrect, password was reset, the key is to restart the bot",
        "the auth is broken since the token is valid until 2025-01-01",
        # code pasted into a ticket: names and expressions, not values
        "token = Name.Function; key=itemgetter(0); token: Optional[str] = None",
        "self.key_password = key_password; username, password = proxy_auth",
        "token: EventLoopToken | None = None; def f(key: SupportsIndex) -> int: ...",
        "def __getitem__(self, key: _1_AllKeys) -> int: ...",
        "<key>Enter</key> and <token>expired</token>",
    ],
)
def test_not_a_secret(text: str) -> None:
    assert found(text) == [], text


@pytest.mark.parametrize(
    "text",
    [
        "UPS tracking 1Z999AA10123456784 and USPS 9400 1000 0000 0000 0000 00",
        "DHL waybill 1234567890, FedEx tracking 771234567890 and FedEx 123456789012345",
        "Sendungsverfolgung 012345678901",
        "Order ID: 0361067558, invoice no. 612345678, case 20151234",
        "HTTP 429 19/10/2023 and €3867,74 - 2019-01-20 and R$ 12.578,57 2025-07-11",
        "Boston, MA 02110-1301, USA",
        "IMEI 347125663323506 and EAN 0113594190278",
        "ticket 14026, port 14023, 14 020 items",
        "I called 3 times between 9:00 and 17:30 about order 140 23",
        "got 4203 1234 9400 1118 9922 3397 4284 90 and order 555-0123, at 555-0123",
    ],
)
def test_not_a_phone_in_the_wild(text: str) -> None:
    assert found(text) == [], text


# --- what is not PII ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "Order ORD-2026-004512, invoice INV-88213, refs #48213 and #0042, ticket-0042",
        "my order 4821377 and 48213 and 12345678 haven't arrived",
        "order 612345678 and order number 4829104823 are late",
        "Bestellnummer 4001234567, Kundennummer 0301234567",
        "Amazon order 114-3941689-8772232",
        "paid €240.00, $1,299.99, £49.99, R$ 1.299,90 and 1 299,00 € on 2026-11-23",
        "dates 2026-11-23, 23/11/2026, 11/23/2026, 23.11.2026 14:05 and 2026-11-23T14:05:33Z",
        "versions v2.14.3, 1.2.3, version 2.14.3.1, v1.2.3.4, firmware 4.1.0.12",
        "We upgraded to 1.7.5.33 yesterday; Chrome 120.0.6099.109 on Windows 10.0.19045.3693",
        "uuid 550e8400-e29b-41d4-a716-446655440000 and "
        "request 123e4567-e89b-12d3-a456-426614174000",
        "commit 9fceb02d0ae598e95dc970b74767f19372d61af8 (9fceb02), "
        "sha256 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "user 381870553235193857, <@1141204832103845918>, <#1141204832103845919>",
        "https://discord.com/channels/1141204832103845918/1141204832103845919/1141204832103845920",
        "tracking 1Z999AA10123456784, 9400 1000 0000 0000 0000 00, 771234567890, "
        "7712 3456 7890, JJD014600003828301234, RR123456789GB",
        "postcodes SW1A 1AA, 10115 Berlin, 75008 Paris, 01310-100 São Paulo, 560001, 90210",
        "test card 4111 1111 1111 1112 (Luhn fails) and 1234 5678 1234 5670 (no network)",
        "IMEI 490154203237518 and 356938035643809",
        "bad IBAN GB29 NWBK 6016 1331 9268 18 and DE88 3704 0044 0532 0130 00",
        "invalid SSNs 000-12-3456, 666-12-3456, 912-12-3456, 123-00-4567, 123-45-0000",
        "undashed 078051120 with no context, and ticket 123-45-6789",
        "MAC 00:1A:2B:3C:4D:5E at 12:30:45, C++ std::vector, ratio 16:9",
        "ip-like 10.0.0.256, 1.2.3, 01.02.03.04",
        "@everyone @here @thoth_support jane@localhost",
        "the bearer token expired; the ghp_ and sk- prefixes are documented; AKIA prefix",
        "error 0x80070005 on port 8080, PIN 1234, 10,000,000 messages, pi 3.14159265",
    ],
)
def test_not_pii(text: str) -> None:
    assert found(text) == [], text


def test_snowflakes_are_not_cards_even_when_luhn_valid() -> None:
    # A Luhn-valid 19-digit run with a real prefix (Visa) but no card word: a snowflake.
    body = "411111111111111111"
    check = next(d for d in "0123456789" if _luhn(body + d))
    assert found(f"message id {body}{check}") == []
    assert found(f"card {body}{check}") == [("CARD", body + check)]


def _luhn(digits: str) -> bool:
    total = 0
    for index, char in enumerate(reversed(digits)):
        value = int(char) * (2 if index % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


# --- placeholders, offsets, overlaps, regions --------------------------------------------------


def test_redact_replaces_with_typed_placeholders() -> None:
    text = (
        "Mail jane@example.com, call +44 20 7946 0958, card 4111 1111 1111 1111, "
        "IBAN DE89 3704 0044 0532 0130 00, IP 203.0.113.7, SSN 078-05-1120, "
        "token ghp_16C7e42F292c6912E7710c838347Ae178B4a, order ORD-2026-004512."
    )
    assert redact(text) == (
        "Mail [EMAIL], call [PHONE], card [CARD], IBAN [IBAN], IP [IP], SSN [SSN], "
        "token [SECRET], order ORD-2026-004512."
    )


def test_redaction_keeps_offsets_into_the_original() -> None:
    text = "x jane@example.com y 203.0.113.7"
    result = REDACTOR.redact(text)
    assert isinstance(result, Redaction)
    assert result.entities == (
        Entity(EntityType.EMAIL, 2, 18),
        Entity(EntityType.IP, 21, 32),
    )
    assert text[2:18] == "jane@example.com"
    assert result.text == "x [EMAIL] y [IP]"


def test_nothing_to_redact() -> None:
    assert REDACTOR.find("") == []
    assert REDACTOR.redact("hello") == Redaction("hello", ())
    assert redact("no numbers here") == "no numbers here"


def test_secret_beats_the_phone_inside_it() -> None:
    url = "https://discord.com/api/webhooks/1141204832103845918/" + "aB3_-x" * 11
    assert found(f"call +44 20 7946 0958 or hit {url}") == [
        ("PHONE", "+44 20 7946 0958"),
        ("SECRET", url),
    ]


def test_iban_beats_the_digits_inside_it() -> None:
    # "0417 1643 00" alone would be a valid Dutch number; inside the IBAN it is not a phone.
    assert found("call 0417 1643 00") == [("PHONE", "0417 1643 00")]
    assert found("NL91 ABNA 0417 1643 00") == [("IBAN", "NL91 ABNA 0417 1643 00")]


def test_email_beats_the_phone_inside_it() -> None:
    assert found("write to +4915123456789@sms.example.de") == [
        ("EMAIL", "+4915123456789@sms.example.de")
    ]


def test_find_is_sorted_and_disjoint() -> None:
    text = "SSN 078-05-1120; jane@example.com; 4111 1111 1111 1111; +33 6 12 34 56 78"
    entities = REDACTOR.find(text)
    assert [e.type for e in entities] == [
        EntityType.SSN,
        EntityType.EMAIL,
        EntityType.CARD,
        EntityType.PHONE,
    ]
    assert all(a.end <= b.start for a, b in itertools.pairwise(entities))


def test_custom_regions_limit_national_numbers_only() -> None:
    german_only = Redactor(regions=("DE",))
    assert found("call 030 123456", german_only) == [("PHONE", "030 123456")]
    assert found("call (201) 555-0123", german_only) == []
    assert found("call +1 201-555-0123", german_only) == [("PHONE", "+1 201-555-0123")]
    us_only = Redactor(regions=["us"])
    assert found("call (201) 555-0123", us_only) == [("PHONE", "(201) 555-0123")]
    assert found("call 030 123456", us_only) == []


def test_unknown_region_is_refused() -> None:
    with pytest.raises(ValueError, match="XX"):
        Redactor(regions=("XX",))


def test_default_regions() -> None:
    assert DEFAULT_REGIONS == ("US", "GB", "DE", "FR", "ES", "IT", "NL", "IN", "BR")


def test_phone_validity_agrees_with_phonenumbers() -> None:
    """The compiled metadata test gives phonenumbers.is_valid_number's answer."""
    rng = random.Random(7)
    disagreements = []
    for region in DEFAULT_REGIONS:
        for kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.MOBILE):
            example = phonenumbers.example_number_for_type(region, kind)
            assert example is not None
            national = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.NATIONAL)
            base = "".join(char for char in national if char.isdigit())
            for _ in range(150):
                keep = rng.randint(1, len(base) - 1)
                digits = base[:keep] + "".join(rng.choice("0123456789") for _ in base[keep:])
                ours = Redactor(regions=(region,))._plan.valid(digits)
                try:
                    number = phonenumbers.parse(digits, region, keep_raw_input=True)
                except phonenumbers.NumberParseException:
                    continue
                if number.country_code_source != CountryCodeSource.FROM_DEFAULT_COUNTRY:
                    continue  # phonenumbers read an IDD or a country code: not a national form
                theirs = phonenumbers.is_valid_number(number)
                if ours != theirs:
                    disagreements.append((region, digits, ours, theirs))
    assert disagreements == []


# --- robustness --------------------------------------------------------------------------------

NUMBERISH = st.text(alphabet=st.sampled_from("0123456789 +-.()/:@#_AZaz€é\n"), max_size=120)
# Pieces the secret and phone patterns start from, glued at random.
SECRETISH = st.lists(
    st.sampled_from(
        [*"0123456789 +-.()/:@#_AZaz€é\n=\"'<>x;,", "tel:", "password", "key", "ext", "sk-",
         "AKIA", "-----BEGIN PRIVATE KEY-----", "://", "--", "</", " is "]
    ),
    max_size=80,
).map("".join)  # fmt: skip


@settings(deadline=None, max_examples=150)
@given(st.one_of(st.text(max_size=300), NUMBERISH, SECRETISH))
def test_find_never_raises(text: str) -> None:
    entities = REDACTOR.find(text)
    assert all(0 <= e.start < e.end <= len(text) for e in entities)
    assert all(a.end <= b.start for a, b in itertools.pairwise(entities))
    assert REDACTOR.redact(text).entities == tuple(entities)


# --- the labelled corpus -----------------------------------------------------------------------


def _corpus(path: Path = CORPUS) -> list[dict[str, object]]:
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines]


@pytest.mark.parametrize(("path", "size"), [(CORPUS, 600), (WILD_CORPUS, 4000)])
def test_corpus_shape(path: Path, size: int) -> None:
    rows = _corpus(path)
    assert len(rows) >= size
    per_type = Counter(e["type"] for row in rows for e in row["entities"])  # type: ignore[attr-defined]
    assert set(per_type) == {kind.value for kind in EntityType}
    assert min(per_type.values()) >= 40
    assert sum(1 for row in rows if not row["entities"]) >= 200


@pytest.mark.parametrize("path", [CORPUS, WILD_CORPUS])
def test_corpus_recall_and_false_positives(path: Path) -> None:
    """Recall of 0.99 for every type and at most one text in 1,000 with a false positive."""
    rows = _corpus(path)
    labelled: Counter[str] = Counter()
    recalled: Counter[str] = Counter()
    missed: list[tuple[str, str]] = []
    false_positive_texts: list[str] = []
    for row in rows:
        text = str(row["text"])
        labels = row["entities"]
        assert isinstance(labels, list)
        entities = REDACTOR.find(text)
        for label in labels:
            labelled[label["type"]] += 1
            if any(
                e.type.value == label["type"]
                and e.start <= label["start"]
                and e.end >= label["end"]
                for e in entities
            ):
                recalled[label["type"]] += 1
            else:
                missed.append((label["type"], text[label["start"] : label["end"]]))
        if any(
            not any(e.start < label["end"] and label["start"] < e.end for label in labels)
            for e in entities
        ):
            false_positive_texts.append(text)
    recall = {kind: recalled[kind] / labelled[kind] for kind in labelled}
    assert set(recall) == {kind.value for kind in EntityType}
    assert all(value >= 0.99 for value in recall.values()), (recall, missed)
    assert len(false_positive_texts) * 1000 <= max(len(rows), 1000), false_positive_texts
