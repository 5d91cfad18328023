"""Stage-2 validators: checksums and structure checks that confirm or reject a candidate.

A validator returns ``False`` to reject a candidate and ``True``/``None`` to keep it (confirmed
or no opinion, as Presidio's ``validate_result``). Validators see only the matched secret and
must be cheap, pure and total: any input, no exception.
"""

from __future__ import annotations

import base64
import binascii
import functools
import math
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

Validator = Callable[[str], "bool | None"]

_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HEX = frozenset("0123456789abcdef")


_NON_DIGIT = re.compile(r"[^0-9]+")
# Byte value of an ASCII digit -> the digit (kept) / the digit sum of twice it (doubled).
_LUHN_KEPT = bytes(range(256)).translate(
    bytes.maketrans(b"0123456789", bytes(range(10)))
)
_LUHN_DOUBLED = bytes(range(256)).translate(
    bytes.maketrans(b"0123456789", bytes(2 * d if d < 5 else 2 * d - 9 for d in range(10)))
)


# Full-width digits (U+FF10-FF19), as East Asian input methods type them, are digits too.
_FULL_WIDTH_DIGITS = str.maketrans("０１２３４５６７８９", "0123456789")


def digits_of(value: str) -> str:
    """The digits of ``value`` as ASCII, in order (separators and everything else dropped);
    full-width digits count, other scripts' digits do not."""
    if value.isascii() and value.isdigit():
        return value
    grouped = value.replace(" ", "").replace("-", "")  # the usual separators, without a regex
    if grouped.isascii() and grouped.isdigit():
        return grouped
    if not value.isascii():
        value = value.translate(_FULL_WIDTH_DIGITS)
    return _NON_DIGIT.sub("", value)


def decode_base64_text(value: str) -> str | None:
    """``value`` decoded as base64 (standard or URL-safe alphabet, padding optional) when that
    gives UTF-8 text; else None."""
    core = value.strip().rstrip("=")
    if not core or len(core) % 4 == 1:
        return None
    padded = core.replace("-", "+").replace("_", "/") + "=" * (-len(core) % 4)
    try:
        return base64.b64decode(padded, validate=True).decode("utf-8")
    except ValueError:  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None


def _luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of ASCII digits (summed as bytes, in C)."""
    data = digits.encode("ascii")
    kept = sum(data[-1::-2].translate(_LUHN_KEPT))
    doubled = sum(data[-2::-2].translate(_LUHN_DOUBLED))
    return (kept + doubled) % 10 == 0


# URL-encoded separators in a card number or SSN (%20 space, %2D dash): their hex digits are
# none of the number's.
_URL_SEPARATOR = re.compile("%2[0Dd]")


def _number_digits(value: str) -> str:
    """A card number's or SSN's digits, separators (URL-encoded ones too) dropped."""
    return digits_of(_URL_SEPARATOR.sub("", value) if "%" in value else value)


def luhn(value: str) -> bool:
    """Card numbers: the Luhn checksum over the digits (separators, even ``%20``, ignored)."""
    digits = _number_digits(value)
    if not 12 <= len(digits) <= 19:
        return False
    return _luhn_ok(digits)


# (prefix digits, IIN range low, high, allowed lengths), checked in order.
_CARD_RANGES: tuple[tuple[int, int, int, frozenset[int]], ...] = (
    (1, 4, 4, frozenset({13, 16, 19})),  # Visa
    (2, 51, 55, frozenset({16})),  # Mastercard
    (4, 2221, 2720, frozenset({16})),  # Mastercard 2-series
    (2, 34, 34, frozenset({15})),  # Amex
    (2, 37, 37, frozenset({15})),
    (4, 6011, 6011, frozenset(range(16, 20))),  # Discover
    (3, 644, 649, frozenset(range(16, 20))),
    (2, 65, 65, frozenset(range(16, 20))),
    (4, 3528, 3589, frozenset(range(16, 20))),  # JCB
    (3, 300, 305, frozenset(range(14, 20))),  # Diners
    (3, 309, 309, frozenset(range(14, 20))),
    (2, 36, 36, frozenset(range(14, 20))),
    (2, 38, 39, frozenset(range(14, 20))),
    (2, 62, 62, frozenset(range(16, 20))),  # UnionPay
    # Maestro: 13 digits too, which card.pan accepts only after a card word; 12, 14 and 15
    # digit Maestro numbers are too rare to justify the false positives.
    (2, 50, 50, frozenset({13, 16, 17, 18, 19})),
    (2, 56, 69, frozenset({13, 16, 17, 18, 19})),
    (4, 2200, 2204, frozenset(range(16, 20))),  # Mir
)


def _ranges_by_lead() -> dict[str, tuple[tuple[int, int, int, frozenset[int]], ...]]:
    """The first two digits of a card number -> the ranges it may fall in (in table order):
    one or two ranges to test instead of all of them, each prefix parsed only when tested."""
    by_lead: dict[str, list[tuple[int, int, int, frozenset[int]]]] = {}
    for spec in _CARD_RANGES:
        width, low, high, _ = spec
        prefixes = (str(p) for p in range(low, high + 1))
        leads = (
            {p + d for p in prefixes for d in "0123456789"}
            if width == 1
            else {p[:2] for p in prefixes}
        )
        for lead in leads:
            by_lead.setdefault(lead, []).append(spec)
    return {lead: tuple(specs) for lead, specs in by_lead.items()}


_CARD_RANGES_BY_LEAD = _ranges_by_lead()


def card_number(value: str) -> bool:
    """A card number: an issued IIN range with a length that brand uses, and Luhn."""
    digits = _number_digits(value)
    n = len(digits)
    if not 13 <= n <= 19:
        return False
    for width, low, high, lengths in _CARD_RANGES_BY_LEAD.get(digits[:2], ()):
        if n in lengths and low <= int(digits[:width]) <= high:
            return _luhn_ok(digits)
    return False


# Digits as speech recognisers write them out, in the languages of the shipped card words.
_SPOKEN_DIGITS = {
    **dict.fromkeys(("zero", "oh", "null", "cero", "zéro"), "0"),
    **dict.fromkeys(("one", "eins", "uno", "un", "um"), "1"),
    **dict.fromkeys(("two", "zwei", "zwo", "dos", "deux", "dois", "due"), "2"),
    **dict.fromkeys(("three", "drei", "tres", "trois", "três", "tre"), "3"),
    **dict.fromkeys(("four", "vier", "cuatro", "quatre", "quatro", "quattro"), "4"),
    **dict.fromkeys(("five", "fünf", "fuenf", "cinco", "cinq", "cinque"), "5"),
    **dict.fromkeys(("six", "sechs", "seis", "sei"), "6"),
    **dict.fromkeys(("seven", "sieben", "siete", "sept", "sete", "sette"), "7"),
    **dict.fromkeys(("eight", "acht", "ocho", "huit", "oito", "otto"), "8"),
    **dict.fromkeys(("nine", "neun", "nueve", "neuf", "nove"), "9"),
}
_SPOKEN_WORD = re.compile(r"[^\W\d_]+")


def spoken_digits(value: str) -> str | None:
    """The digits of ``value`` written as number words ("five one five five …"), or None when
    a word in it is not a digit's name."""
    digits = []
    for word in _SPOKEN_WORD.findall(value.lower()):
        digit = _SPOKEN_DIGITS.get(word)
        if digit is None:
            return None
        digits.append(digit)
    return "".join(digits)


def spoken_card_number(value: str) -> bool:
    """A card number said digit by digit in words, as transcripts of calls hold it: the
    digits a card (``card_number``)."""
    digits = spoken_digits(value)
    return digits is not None and card_number(digits)


def spoken_ssn(value: str) -> bool:
    """An SSN said digit by digit in words ("five three six two two …"): nine digits that
    are an SSN as issued (``ssn``)."""
    digits = spoken_digits(value)
    return digits is not None and len(digits) == 9 and ssn(digits)


# What an SSN is written with: digits (full-width too) and the separators people put between
# its groups.
_SSN_SEPARATORS = " \t\u00a0-./+\u2010\u2011\u2012\u2013\u2014\u2015\u2212"
_SSN_CHARACTERS = dict.fromkeys(map(ord, "0123456789０１２３４５６７８９" + _SSN_SEPARATORS))


def ssn(value: str) -> bool:
    """US SSNs as issued: area not 000/666/900-999, group not 00, serial not 0000. Only a
    number: a sentence that holds one under an SSN key ("SSN '536-22-1234' already
    registered") is text, whose SSN the text rules mask without the words around it."""
    digits = _number_digits(value)
    if len(digits) != 9:
        return False
    if _URL_SEPARATOR.sub("", value).translate(_SSN_CHARACTERS):
        return False
    area, group, serial = digits[:3], digits[3:5], digits[5:]
    if area in ("000", "666") or area[0] == "9":
        return False
    if group == "00" or serial == "0000":
        return False
    # Numbers never issued and widely used as examples or tests.
    if digits in ("123456789", "078051120", "219099999"):
        return False
    return True


# ISO 13616 lengths by country (the common SEPA and non-SEPA ones).
_IBAN_LENGTHS = {
    "AD": 24, "AE": 23, "AL": 28, "AT": 20, "AZ": 28, "BA": 20, "BE": 16, "BG": 22, "BH": 22,
    "BR": 29, "CH": 21, "CR": 22, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "DO": 28, "EE": 20,
    "EG": 29, "ES": 24, "FI": 18, "FO": 18, "FR": 27, "GB": 22, "GE": 22, "GI": 23, "GL": 18,
    "GR": 27, "GT": 28, "HR": 21, "HU": 28, "IE": 22, "IL": 23, "IQ": 23, "IS": 26, "IT": 27,
    "JO": 30, "KW": 30, "KZ": 20, "LB": 28, "LC": 32, "LI": 21, "LT": 20, "LU": 20, "LV": 21,
    "MC": 27, "MD": 24, "ME": 22, "MK": 19, "MR": 27, "MT": 31, "MU": 30, "NL": 18, "NO": 15,
    "PK": 24, "PL": 28, "PS": 29, "PT": 25, "QA": 29, "RO": 24, "RS": 22, "SA": 24, "SC": 31,
    "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TN": 24, "TR": 26, "UA": 29, "VG": 24, "XK": 20,
}


def mod97(value: str) -> bool:
    """IBANs: known country length and the mod-97 check digits."""
    iban = "".join(c for c in value if c.isalnum()).upper()
    expected = _IBAN_LENGTHS.get(iban[:2])
    if expected is None or len(iban) != expected:
        return False
    rearranged = iban[4:] + iban[:4]
    try:
        number = int("".join(str(int(c, 36)) for c in rearranged))
    except ValueError:
        return False
    return number % 97 == 1


def _base62(number: int, width: int) -> str:
    out = []
    for _ in range(width):
        number, rem = divmod(number, 62)
        out.append(_BASE62[rem])
    return "".join(reversed(out))


def _crc32_token(value: str, prefix_len: int) -> bool | None:
    """GitHub-style tokens: prefix + 30 random base62 + 6 base62 chars of CRC32(random)."""
    body = value[prefix_len:]
    if len(body) != 36:
        return None
    payload, checksum = body[:30], body[30:]
    return _base62(binascii.crc32(payload.encode()), 6) == checksum


def github_crc32(value: str) -> bool | None:
    """Confirms GitHub classic tokens with a valid checksum; never rejects.

    A token with the right prefix and length but a bad checksum is still far more likely a
    real (or real-looking) credential than anything else, so it stays masked.
    """
    return True if _crc32_token(value, 4) else None


def npm_crc32(value: str) -> bool | None:
    """Confirms npm tokens (``npm_`` + 36) with a valid checksum; never rejects (as GitHub)."""
    return True if _crc32_token(value, 4) else None


def jwt(value: str) -> bool:
    """JWTs: the header segment is base64url JSON with an ``alg``."""
    # The standard json module: importing orjson (with the modules it imports) costs a
    # process about 20 ms, and a header is a few dozen bytes.
    import json

    header = value.split(".", 1)[0]
    try:
        decoded = base64.urlsafe_b64decode(header + "=" * (-len(header) % 4))
        parsed = json.loads(decoded)
    except (ValueError, RecursionError):  # bad base64 or UTF-8, not JSON, or nested too deep
        return False
    return isinstance(parsed, dict) and "alg" in parsed


def sasl_plain(value: str) -> bool:
    """SASL PLAIN credentials: base64 of "authzid NUL user NUL password", both of the last
    two present."""
    try:
        raw = base64.b64decode(value + "=" * (-len(value) % 4), validate=True)
    except (ValueError, binascii.Error):
        return False
    parts = raw.split(b"\0")
    if len(parts) != 3 or not parts[1] or not parts[2]:
        return False
    # a client that masks the password before logging (nodemailer: "/* secret */")
    password = parts[2].decode("utf-8", "replace")
    return not (password.startswith("/*") and password.endswith("*/"))


# AWS's documentation and SDK tests use AKIAIOSFODNN7EXAMPLE and
# wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY; configuration samples copy them.
_AWS_EXAMPLE_SUFFIXES = ("EXAMPLE", "EXAMPLEKEY")
_AWS_PREFIXES = (
    "AKIA", "ASIA", "ABIA", "ACCA", "AGPA", "AIDA", "AIPA", "ANPA", "ANVA", "APKA", "AROA", "ASCA",
)


def aws_key_id(value: str) -> bool:
    """AWS access key ids: a known 4-letter prefix and a base32 (A-Z2-7) body of 16."""
    if len(value) != 20 or not value.startswith(_AWS_PREFIXES) or "XXXXXXXX" in value:
        return False  # ASIAXXXXXXXXXXXXVTSZ: CloudTrail's own mask
    if value.endswith(_AWS_EXAMPLE_SUFFIXES):
        return False  # AKIAIOSFODNN7EXAMPLE: the example in AWS's documentation
    return all(c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567" for c in value[4:])


def aws_secret_key(value: str) -> bool:
    """AWS secret access keys, but for the documentation's example."""
    return not value.endswith(_AWS_EXAMPLE_SUFFIXES)


# A value made of these only is a mask (****, xxxx-xxxx), not a secret.
_MASK_AND_SEPARATOR_CHARS = frozenset("*xX-_.")
# A value holding one of these runs is masked in part (1//XXXXXXXXXXXX, a dashboard's
# sk_live_••••rGzS) or a sample (pdl_sdbx_apikey_xxxxxxxx…).
_MASK_RUNS = ("***", "XXXXXX", "xxxxxx", "\u2022\u2022\u2022", "\u25cf\u25cf\u25cf")
# Templates: shell and Compose (${X}), FreeSWITCH's preprocessor ($${x}), Jinja ({{x}}), Python
# (%(x)s), Logstash's sprintf (%{[@metadata][api_key]}), Grafana's $__file{…} and $__env{…},
# Salesforce Marketing Cloud's AMPscript (%%=v(@accessToken)=%%, %%FirstName%%), Power
# Automate's and Logic Apps' expressions (@{parameters('ApiToken')}), and n8n's mark for a
# field left blank in an exported credential (__n8n_BLANK_VALUE_…), MuleSoft's secure
# properties (![…]), Octopus Deploy's variables and Ruby's interpolation (#{DbPassword}), and
# FreeRADIUS' and Perl's environment (secret = $ENV{RADIUS_SECRET}).
_PLACEHOLDER_PREFIXES = (
    "${", "$(", "{{", "<", "%(", "%{", "%%", "$__", "[redacted", "arn:", "hmac-sha256:",
    "@{", "__n8n_BLANK_VALUE_", "![", "#{", "$ENV{",
    # "[redacted]" in base64, as Envoy's config dump shows a secret's inline_bytes
    "W3JlZGFjdGVkXQ",
)
# A name in braces that a tool fills in (Frigate's rtsp://admin:{FRIGATE_RTSP_PASSWORD}@…), or
# a Windows environment variable (%DB_PASS%).
_BRACED_NAME = re.compile(r"\{[A-Za-z_][A-Za-z0-9_.]{0,63}\}|%[A-Za-z_][A-Za-z0-9_]{0,63}%")
# References that secret managers and config tools resolve at run time (Bank-Vaults'
# vault:secret/data/app#password, vals' ref+vault://, 1Password's op://vault/item/field), and
# a file or an environment variable that holds the value (access_token=file:/run/secrets/t,
# private_key: env:PRIVATE_KEY); a key that stays in a key store and is named by its URI
# (signing_key: hsm://slot/3, a PKCS#11 URI, cosign's and Tink's awskms://, gcp-kms://, …).
# Also where the value stays encrypted: SOPS' ENC[AES256_GCM,data:…,type:str].
_REFERENCE_PREFIXES = (
    "vault:", "ref+", "op://", "file:", "env:",
    "hsm:", "pkcs11:", "awskms:", "aws-kms:", "gcpkms:", "gcp-kms:", "azurekms:", "azure-kv:",
    "hashivault:",
    # Azure App Service's Key Vault reference, and a value SOPS encrypted in a config file
    "@Microsoft.KeyVault(", "ENC[AES256_GCM,",
    # the Datadog Agent's secret handles (DD_API_KEY=ENC[k8s_secret@ns/name/key]), resolved by
    # its secret backend; k6's environment (__ENV.SYNTH_PASS)
    "ENC[k8s_secret@", "ENC[file@", "__ENV.",
)
# A secret manager's secret by name and version, as Cloud Run's --set-secrets and Secret
# Manager references give it (DB_PASS=db-pass:latest, STRIPE_KEY=stripe-key:3).
_SECRET_VERSION_REFERENCE = re.compile(r"[a-z][a-z0-9_\-]{0,254}:(?:latest|[0-9]{1,6})")
_NOT_VALUE_PREFIXES = _PLACEHOLDER_PREFIXES + _REFERENCE_PREFIXES
# A placeholder in angle brackets inside a value, after a key's real prefix (a quoted
# "sk_live_<your-secret-key>").
_ANGLE_PLACEHOLDER = re.compile(r"<[A-Za-z][A-Za-z0-9_\- ]{1,40}>")
# A state said in the negative where a value would be: not_requested, not-provided, no_pin,
# [not logged].
_NEGATED_STATE = re.compile(r"(?i:not?)[-_ ][a-z]{2,20}(?:[-_ ][a-z]{2,20})?")
# What tools write in place of a masked value, in other languages than English.
_MASKS_IN_OTHER_LANGUAGES = frozenset(
    {"redactado", "oculto", "oculta", "enmascarado", "censurado", "ocultado", "mascarado"}
    | {"geschwärzt", "maskiert", "verborgen", "versteckt", "masqué", "caché", "masquée"}
    | {"nascosto", "mascherato", "oscurato", "gemaskeerd", "ukryte", "ukryty"}
    | {"zamaskowane", "gizli", "maskelendi", "скрыт", "скрыто", "скрытый", "замаскирован"}
)
_PLACEHOLDER_WORDS = frozenset(
    {"null", "none", "true", "false", "undefined", "redacted", "<redacted>"}
    # states logged where a value would be: session_id=missing, verification_code=sent
    | {"missing", "unknown", "anonymous", "expired", "pending", "sent", "invalid", "required"}
    | {"enabled", "disabled", "empty", "unset", "default", "n/a", "not-set", "unchanged"}
    | {"changed", "updated", "reset", "rotated", "revoked", "refreshed", "failed", "locked"}
    | {"valid", "present", "public", "demo", "set", "configured", "provided"}
    | {"consumed", "used", "verified"}  # a one-time token's state: reset_token=consumed
    # a permission level (GitHub Actions' "id-token: write")
    | {"read", "write"}
    # where a resolver put it: "vault:…#password -> env CLIENT_SECRET"
    | {"env", "from"}  # api_key=from env
    | {"nil"}  # Elixir's and Ruby's null: %{"password" => nil}
    # authentication methods under an "auth" key (sshd auth=publickey, "auth":"oauth2")
    | {"publickey", "password", "oauth2", "oauth", "login", "plain", "ldap", "saml", "oidc"}
    # a sample's words for what goes there (mqtt://USER:PASS@broker.example.com)
    | {"pass", "passwd", "token", "apikey", "api_key"}
    # what other tools write in place of a value they masked (Kafka "[hidden]", Rails
    # "[FILTERED]", GitLab "[MASKED]")
    # Xbox Live's scheme, taken for the value by a key name (its token after "x=hash;" is
    # the Authorization rule's)
    | {"xbl3.0"}
    | {"hidden", "filtered", "masked", "removed", "omitted", "sensitive", "secret"}
    | {"protected", "obfuscated", "scrubbed", "censored", "elided", "private", "encrypted"}
    # ... and in other languages ("pass": "[REDACTADO]", пароль=<скрыт>)
    | _MASKS_IN_OTHER_LANGUAGES
)
# Code, not a value: a traceback's source line passes a variable (password=DB_PASSWORD,
# secret=settings.WEBHOOK_SECRET, credentials=pika.PlainCredentials(, password=cfg[...); a
# constant: each word letters and maybe a number after them, or a number inside them after two
# letters at least (auth=WPA2_PSK, KRB5KDC_ERR_PREAUTH_FAILED; not X7Q_9ZK2).
_CONSTANT_WORD = r"(?:[A-Z]+[0-9]*|[A-Z]{2,}[0-9]+[A-Z]+)"
_ENV_NAME = re.compile(rf"{_CONSTANT_WORD}(?:_(?:{_CONSTANT_WORD}|[0-9]+))+")
_CAMEL_WORDS = re.compile(r"(?:[A-Z][a-z]+){2,}")
_WORD_AND_NUMBER = re.compile(r"[A-Za-z]{3,}[0-9]{2,}[!#$%&*?]?")
# The name of a secret rather than the secret: lower-case words joined by "_" (or "-", as Secret
# Manager's and Kubernetes' secrets are named: --secret=db-password), one separator throughout,
# and ending in the secret's word (token=clever_district_token, password=db_password, an
# alert's label secret="db-creds"), maybe after its namespace (secret="platform/vendor-keys"). A
# passphrase joined so does not end so (correct_horse_battery_staple).
_SECRET_NAME = re.compile(
    r"(?:[a-z][a-z0-9\-]{0,62}/)?[a-z]+(?P<sep>[_-])(?:[a-z]+(?P=sep))*"
    r"(?:tokens?|passwords?|passwd|passphrase|secrets?|keys?|pass|pwd|credentials?|creds)"
)
_DUNDER_NAME = re.compile(r"__[A-Za-z0-9_]{2,40}__")
_HTTP_VERSION = re.compile(r"HTTP/[0-9](?:\.[0-9])?")
# A shell or CI variable left unexpanded in a logged command or config ($DB_PASSWORD, $TOKEN).
# Any case: a PHP or GraphQL variable too ($password, $dbPass); a JetBrains IDE's macro in a
# run configuration ($DB_PASSWORD$).
# Its name is one case (DB_PASSWORD, db_password), camelCase or PascalCase (apiKey, PowerShell's
# $SecurePassword): "$QqvBUcd15hkidlQ", mixed at random, is a password that starts with "$".
_SHELL_VARIABLE = re.compile(
    r"\$(?:[A-Z_][A-Z0-9_]+|[a-z_][a-z0-9_]+|[a-z]?[a-z0-9]*(?:[A-Z][a-z0-9]+)+)[),$]?"
)
# A variable escaped with a second "$" (Compose's $$VAR, FreeSWITCH's $${default_password}); a
# generated password may also begin with "$$" ($$h_m!^=80dDP=), and that one is a value.
_DOUBLE_DOLLAR_VARIABLE = re.compile(r"\$\$(?:\{[^{}\s]{1,64}\}|[A-Za-z_][A-Za-z0-9_]{0,63})")
# Where a secret is kept rather than the secret: an absolute, home or ./ path of two or more
# parts (/run/secrets/app, ~/.aws/credentials, ./password.txt), maybe with a container mount's
# options (-v /run/secrets/db_password:/run/secrets/db_password:ro).
_FILE_PATH = re.compile(r"(?:/|~/|\./)[\w.\-]+(?:/[\w.\-]+)+/?(?::(?:ro|rw|z|Z)(?:,[\w=]+)*)?")
# A Windows file's path, its backslashes maybe escaped (-privatekey="C:\\EDI\\keys\\t.ppk"): a
# drive, folders and a file with an extension.
_WINDOWS_FILE_PATH = re.compile(
    r"[A-Za-z]:(?:\\{1,2}|/)(?:[\w .$\-]{1,255}(?:\\{1,2}|/)){0,32}"
    r"[\w .$\-]{1,255}\.[A-Za-z0-9]{1,5}"
)
# A secret store's path of lower-case words, three parts or more (Vault's kv/data/app/db,
# database/creds/orders-ro): where a value is kept, not the value.
_SECRET_PATH = re.compile(r"[a-z][a-z_\-]*(?:/[a-z][a-z0-9_.\-]*){2,8}")


def _has_random_segment(path: str) -> bool:
    """Whether a path-shaped value has a part no one names a directory or file by: 16 or more
    letters and digits mixing both cases and digits, as base64 secrets that start with "/"
    have (sasl.password=/E0xMviFaTIb82n/ywFDcwsEcy7...)."""
    return any(
        len(part) >= 16
        and part.isalnum()
        and not part.isdigit()
        and any(c.isdigit() for c in part)
        and any(c.isupper() for c in part)
        and any(c.islower() for c in part)
        for part in path.split("/")
    )


# What a dotted name in code starts with: an object, a module or a namespace.
_CODE_OWNERS = frozenset(
    {"self", "this", "cls", "settings", "config", "conf", "cfg", "env", "os", "app", "ctx"}
    | {"context", "request", "req", "args", "opts", "options", "params", "secrets", "creds"}
    | {"credentials", "vault", "data", "payload", "form", "body", "obj"}
)
# A PowerShell cmdlet: $pw = Read-Host -AsSecureString, $pw = Get-Content C:\svc.cred.
_CMDLET = re.compile(
    r"(?:Get|Set|Read|New|Import|Export|ConvertTo|ConvertFrom|Invoke|Select|Out|Write|Add"
    r"|Remove|Test|Start|Stop|Join|Split|Format|Resolve)-[A-Z][A-Za-z]{1,40}"
)
# A .NET type's name where its value is not shown (PowerShell: System.Security.SecureString,
# or SecureString alone, as Orchestrator and RPA tools print a credential asset).
_DOTNET_TYPE = re.compile(r"(?:System|Microsoft)(?:\.[A-Z]\w{0,63}){1,8}|SecureString")
# An object's repr with its fields (PostAuthenticationToken(user="ana", ...)): no value.
_REPR = re.compile(r"[A-Za-z_][\w.\\]{0,100}\([A-Za-z_]\w{0,40}=")


def _is_code_reference(core: str) -> bool:
    """Whether ``core`` reads as a name in code rather than a value. Tokens with a dotted
    prefix (hvs.…, ya29.…, sl.…) mix case and digits at random and are not taken for one."""
    core = core.rstrip(",")
    if core[:1].isupper() and _ENV_NAME.fullmatch(core):
        return True
    called = core.endswith(("(", "["))
    if not called and "." not in core:
        return False
    parts = core.rstrip("([").split(".")
    if not all(p.isidentifier() and p.isascii() and len(p) <= 64 for p in parts):
        return False
    if called:
        return True  # get_token(, cfg[, getpass.getpass(
    if len(parts) < 2:
        return False
    if len(parts) >= 3 and all(p.isalpha() and p.islower() for p in parts):
        # correct.garden.river.sunset: words, no owner of code (self, settings, os.environ)
        return parts[0] in _CODE_OWNERS
    *owners, last = parts
    if not all(p.replace("_", "").isalpha() and p.islower() for p in owners):
        return False  # a module, object or namespace is a lower-case name
    return (
        last.replace("_", "").isalpha()
        # self.password, e.session_id (a SQL column), env.DB_PASSWORD
        and (last.islower() or (last.isupper() and len(last) >= 3))
    ) or _CAMEL_WORDS.fullmatch(last) is not None  # pika.PlainCredentials


_RATIO = re.compile(r"[0-9]{1,6}/[0-9]{1,6}")


# Stripe's ids for its objects (tokenised cards, payment methods, customers, charges): they
# name an object that only the account's secret key can use, as a database key would. Client
# secrets (pi_…_secret_…) and keys (sk_live_…, rk_live_…) are not of this shape.
_STRIPE_OBJECT_ID = re.compile(
    r"(?:tok|btok|pm|card|src|ba|cus|ch|py|pi|seti|in|sub|evt|txn|re|po|tr"
    # and Stripe Issuing's: authorizations, cards, cardholders, transactions, disputes
    r"|iauth|ic|ich|ipi|idp|itok)_[A-Za-z0-9]{14,34}"
)


# Values shown but not secret: a key cut down for display (sk-...QCyF, AKIA…WXYZ,
# f7d8cb75…), a sample value in an example file (your-key-here, YOUR_API_TOKEN,
# changeme-in-vault), and keys that are public by design: Stripe's publishable keys, Mapbox's
# public tokens (pk.eyJ…), Square's application ids, Adyen's client keys (live_ and 32
# capitals and digits), Global Payments' (Heartland's) public API keys (pkapi_prod_…) and
# RevenueCat's SDK keys (appl_…, goog_…), all of which browsers and apps are sent; the
# tracking token of Marketo's Munchkin cookie, which it sets in every visitor's browser; and
# public keys themselves.
_SHORTENED = re.compile(r"\w{0,8}[-_]?(?:\.{3}|\u2026)\w{0,6}")
_SAMPLE_VALUE = re.compile(
    # up to three words first: WordPress's sample salts, "put your unique phrase here"
    r"(?:[A-Za-z]{1,12} ){0,3}(?i:your)(?:[-_ ]|(?=[A-Z]))[A-Za-z_\- ]{0,40}"
    r"|[A-Za-z_\-]{0,40}[-_](?i:here)"
    # an instruction in a sample config: changeme-in-vault, changeit_before_deploy, and a
    # sample key in a vendor's shape (changeme-us21: Mailchimp's data-centre suffix)
    r"|(?i:change[-_]?(?:me|it))[-_][A-Za-z][A-Za-z0-9_\-]{1,40}"
)
_PUBLIC_KEY = re.compile(
    r"pk_(?:live|test)_\w{8,}|pk\.eyJ[\w.\-]+|sq0idp-[\w\-]{22}|(?:live|test)_[A-Z0-9]{32}"
    r"|pkapi_(?:prod|cert|test)_\w{16,}"
    # RevenueCat's public SDK keys, one per store (its secret keys are sk_…)
    r"|(?:appl|goog|amzn)_[A-Za-z0-9]{20,40}"
    # A public key's DER (SubjectPublicKeyInfo) in base64, under names such as licenseKey
    # (Google Play's app licence key) or publicKey: RSA keys of any size, EC P-256, Ed25519.
    r"|MII[A-Za-z0-9+/]{3}ANBgkqhkiG9w0BAQEFAAOC[A-Za-z0-9+/=.\u2026]{8,}"
    r"|MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE[A-Za-z0-9+/=.\u2026]{8,}"
    r"|MCowBQYDK2VwAyEA[A-Za-z0-9+/=]{43,44}"
    # An X.509 certificate's DER in base64 (a WS-Security BinarySecurityToken of type X509v3,
    # an x5c entry): SEQUENCE, SEQUENCE, version 3, serial number.
    r"|MII[A-Za-z0-9+/]{3}CCA[A-Za-z0-9+/]{2}gAwIBAgI[A-Za-z0-9+/=.\u2026]{8,}"
    # Marketo's Munchkin tracking cookie (_mkto_trk=id:…&token:_mch-domain-timestamp-n)
    r"|_mch-[\w.\-]{1,253}-[0-9]{13}-[0-9]{1,6}"
)
# A number shown masked but for its last digits: XXXX-XXXX-XXXX-3424, **** **** 4242.
_MASKED_DISPLAY = re.compile(r"(?:[Xx*\u2022]{2,6}[- ]?){1,5}[0-9]{0,6}")
# A secret as Jenkins stores and prints it: encrypted with the controller's master key, in
# braces (credentials.xml, config.xml). Opening it takes that key, which no log holds.
_JENKINS_ENCRYPTED = re.compile(r"\{AQAAAB[A-Za-z0-9+/]{20,}={0,2}\}")
# The same for Jasypt's ENC(…) (Spring, ActiveMQ Artemis, Camel): opened with a key kept apart.
_JASYPT_ENCRYPTED = re.compile(r"ENC\([A-Za-z0-9+/=]{16,}\)")
# And for a Bitnami SealedSecret's encryptedData (kubeseal's output, made to be committed): a
# version byte 2 (base64 "Ag"), a 512-byte RSA-wrapped session key and the AES-GCM ciphertext;
# only the controller's private key opens it.
_SEALED_SECRET = re.compile(r"Ag[A-D][A-Za-z0-9+/]{600,}={0,2}")
# What other tools write in place of a value, as prose: "connected (token hidden)", or
# Windows setup's *SENSITIVE*DATA*DELETED*.
_MASK_WORDS = frozenset(
    {"hidden", "redacted", "masked", "omitted", "filtered", "elided", "deleted"}
)
_WORDS = re.compile(r"[a-z]+")
# A sentence in a value's place: an API's error message under the field it is about
# ({"Key":"x-client-secret","Value":"The client secret is missing or invalid."}).
_SENTENCE = re.compile(r"[A-Z][a-z]{0,15}(?: [a-z]{1,15}){4,30}\.")


def is_other_tools_mask(value: str) -> bool:
    """Whether ``value`` is what another tool put in a secret's place: a word such as
    REDACTED or [FILTERED] (in any language listed), maybe in brackets or stars, or a run of
    stars, bullets or x's. A value under a sensitive key in a dict is masked whatever its shape,
    but such a mask holds nothing to seal."""
    core = value.strip("\"' ")
    if len(core) >= 3 and not core.strip("*\u2022xX"):
        return True
    word = core.strip("[]*<>()").lower()
    return word in _MASK_WORDS or word in _MASKS_IN_OTHER_LANGUAGES


def not_placeholder_like(value: str) -> bool:
    """Rejects values that are obviously not secrets: one repeated char, masks (ours and other
    tools'), templates, status words, code (a variable or a call in a traceback's source
    line, an environment variable's name, a SQL column, an object's repr), references that
    are resolved at run time (vault:, file:, env:), SQL bind parameters, a word in
    parentheses (Terraform's "(sensitive value)", "(known after apply)"), a count of a total
    (0/1), and AWS ARNs (a secret's name, as in Secrets Manager's "SecretId").

    Every key-name candidate passes through here: the cheap tests come first.
    """
    core = value.strip("\"'")
    if "%" in core:
        if core[0] == "%" and _BRACED_NAME.fullmatch(core):
            return False  # %DB_PASS%: a Windows environment variable, not an escape
        from urllib.parse import unquote  # here: most values hold no escape

        core = unquote(core) or core  # redis://:%2A%2A%2A%2A@…, token=%3Cyour-token%3E
    chars = set(core)
    # One character repeated, or two (xx, *-, 78): a mask or no value. Three digits or more are
    # the exception: a CVV or a PIN of two digits (288, 1212) is as secret as any.
    if len(chars) == 1 or (len(chars) == 2 and not (core.isdigit() and len(core) >= 3)):
        return False
    if chars <= _MASK_AND_SEPARATOR_CHARS or any(run in core for run in _MASK_RUNS):
        return False  # EAAXXXXXXXXXXXX, sk_live_••••••••rGzS: masked but for a prefix or a tail
    if "<" in core and _ANGLE_PLACEHOLDER.search(core):
        return False  # "sk_live_<your-secret-key>": a sample
    if _MASKED_DISPLAY.fullmatch(core):
        return False
    if core[0] == "[" or (core[0] == "*" and core[-1] in "]*"):
        # [FILTERED], **redacted**: another tool's mask; "[REDACTED" too, where a pattern's
        # value may not end in a bracket
        core = core.strip("[]*")
        if not core:
            return False
    if len(core) <= 12 and core.lower() in _PLACEHOLDER_WORDS:
        return False
    if core[:3].lower() in ("not", "no_", "no-", "no ") and _NEGATED_STATE.fullmatch(core):
        return False  # mobile_credential=not_requested, token=not-provided, pin=no_pin
    if core.startswith(_NOT_VALUE_PREFIXES) or (core[0] in "{%" and _BRACED_NAME.fullmatch(core)):
        return False
    if core[0] == "{" and _JENKINS_ENCRYPTED.fullmatch(core):
        return False  # <password>{AQAAAB…}</password>: sealed with the Jenkins master key
    if core[0] == "E" and _JASYPT_ENCRYPTED.fullmatch(core):
        return False  # <cluster-password>ENC(3e16…)</cluster-password>
    if core[:2] == "Ag" and len(core) > 600 and _SEALED_SECRET.fullmatch(core):
        return False  # encryptedData: {"client-secret": "AgB…"}
    if ":" in core and _SECRET_VERSION_REFERENCE.fullmatch(core):
        return False
    if core.startswith("ID:"):
        return False  # a JMS connection or session id (ActiveMQ's session=ID:host-4294-…)
    first = core[0]
    if first == "(" and core[1:].rstrip(")").replace(" ", "").isalpha():
        return False
    if first == "$" and (
        _SHELL_VARIABLE.fullmatch(core) or _DOUBLE_DOLLAR_VARIABLE.fullmatch(core)
    ):
        return False  # token: $GITHUB_TOKEN, --set db.password=$DB_PASSWORD (not expanded)
    if ("_" in core or "-" in core) and _SECRET_NAME.fullmatch(core.rstrip(")")):
        # token=clever_district_token (env, not shown), $(gcloud … --secret=db-password): what
        # it is called
        return False
    if first == "H" and _HTTP_VERSION.fullmatch(core):
        return False  # an access log's request line after an empty value: "…&token= HTTP/1.1"
    if first == "_" and _DUNDER_NAME.fullmatch(core):
        return False  # a template's slot: Node-RED's "__PWRD__" where a credential was set
    if first == "!" and core[1:].isalpha():
        return False  # a YAML tag: password: !vault |, !Ref DBPassword, !Sub, !GetAtt
    if first in "/.~" and _FILE_PATH.fullmatch(core) and not _has_random_segment(core):
        return False  # secret=/run/secrets/app, credentials: /etc/app/creds.json
    if core[1:2] == ":" and _WINDOWS_FILE_PATH.fullmatch(core):
        return False  # a key file's path: -privatekey="C:\\keys\\sftp.ppk"
    if core.count("/") >= 2 and _SECRET_PATH.fullmatch(core):
        return False  # a secret engine's path: Vault agent's secret=database/creds/app-ro
    if first == "A" and core.startswith("AutoGenerate"):
        return False  # ASP.NET's <machineKey validationKey="AutoGenerate,IsolateApps">
    if first in ":@" and core[1:].isidentifier() and not _WORD_AND_NUMBER.fullmatch(core[1:]):
        # a SQL bind parameter (session_id = :session_id, = @session_id, @p0); not a word and a
        # number, as people choose passwords (@Pharmacy347)
        return False
    if first == "@" and _FILE_PATH.fullmatch(core[1:]):
        return False  # read from a file (vault write … password=@/run/secrets/pg, curl -d @…)
    if first == "-" and core[1:].isdigit():
        return False  # a negative number: Cassandra's partition "token -668573621372679220"
    if first.isdigit() and _RATIO.fullmatch(core):
        return False  # a count of a total: Postfix's "auth=0/1" (attempts/successes)
    if "(" in core and _REPR.match(core):
        return False
    if "-" in core and _CMDLET.fullmatch(core.lstrip("$(")):
        return False  # -NewPassword (Read-Host -AsSecureString …): typed in, not shown
    if core[0] in "SM" and _DOTNET_TYPE.fullmatch(core.rstrip(")")):
        return False
    if "_" in core[1:6] and _STRIPE_OBJECT_ID.fullmatch(core):
        return False  # card_token=tok_…, payment_method=pm_…: Stripe's references to its objects
    if _SHORTENED.fullmatch(core) or _SAMPLE_VALUE.fullmatch(core) or _PUBLIC_KEY.fullmatch(core):
        return False
    if core.endswith(_AWS_EXAMPLE_SUFFIXES):
        return False  # AWS's documentation examples, copied into sample configs
    if (" " in core or "*" in core or "[" in core) and not _MASK_WORDS.isdisjoint(
        _WORDS.findall(core.lower())
    ):  # connected (token hidden), apikey|[redacted]
        return False
    if core[-1] == "." and " " in core and _SENTENCE.fullmatch(core):
        return False
    return not (("." in core or "_" in core or core[-1] in "([") and _is_code_reference(core))


# A resource's name: lower-case words and numbers joined by - . /, with a path or a version
# or year in it (Kubernetes secrets, KMS aliases, key ids: app-credentials-v20240507,
# prod/orders/db-password-v7, kid-2024-05-07-rsa01). Words joined by dashes alone are not
# taken for one: passphrases look the same (cinder-lagoon-copper4).
_RESOURCE_NAME = re.compile(r"[a-z0-9]+(?:[-./][a-z0-9]+)+")
_NAME_PARTS = re.compile(r"[-./]")
_VERSION_OR_YEAR = re.compile(r"v[0-9]+|(?:19|20)[0-9]{2}[0-9]*")


# A setting's name in camelCase that names a secret or a reference to one (existingSecretKey,
# passwordSecretName, tokenSecretRef): what a chart or a config calls it, not its value.
_SETTING_NAME = re.compile(r"[a-z]+(?:[A-Z][a-z]+){1,6}(?:Key|Name|Ref|Secret|Token|Password)")


def not_resource_name(value: str) -> bool:
    """``not_placeholder_like``, and not a resource's name (a word of 3+ letters, and a path,
    a version or a year), nor a setting's name in camelCase (a Helm chart's
    existingSecretPasswordKey): under "secret" or "signing key" in prose a name is as common
    as a secret."""
    core = value.strip("\"'")
    if _SETTING_NAME.fullmatch(core):
        return False
    if _RESOURCE_NAME.fullmatch(core):
        parts = _NAME_PARTS.split(core)
        if any(p.isalpha() and len(p) >= 3 for p in parts) and (
            "/" in core or any(_VERSION_OR_YEAR.fullmatch(p) for p in parts)
        ):
            return False
    return not_placeholder_like(value)


def not_a_count(value: str) -> bool:
    """``not_placeholder_like``, and not a count, a ratio or a percentage (pass=118,
    pass: 118/120, 98.3%), as test runners write them under "pass", nor a kind of pass, one
    upper-case word (a visitor system's pass=DAY, pass=CONTRACTOR)."""
    core = value.strip("\"'").rstrip("%")
    if core.replace("/", "", 1).replace(".", "", 1).isdigit():
        return False
    if core.isalpha() and core.isupper() and core.isascii():
        return False
    return not_placeholder_like(value)


# A card payment's approval code (ISO 8583 field 38): six upper-case letters and digits.
_APPROVAL_CODE = re.compile(r"[A-Z0-9]{6}")


# Authentication methods as a server logs which one a client used (PI Web API's auth=Kerberos).
_AUTH_METHODS = frozenset(
    [
        "kerberos", "ntlm", "negotiate", "basic", "digest", "bearer", "anonymous", "certificate",
        "sas", "oauth",
        # who signs a Tomcat resource on: <Resource auth="Container"> (or "Application")
        "container", "application",
    ]
)
# Methods named with digits or dashes (Azure IoT Hub's auth=x509CA, MQTT brokers' auth=x509,
# SASL's cram-md5), and a version after a name that ends in "auth" (a chart or an image:
# charts/auth:3.28.7).
_AUTH_METHOD_OR_VERSION = re.compile(
    r"(?i:x\.?509(?:[-_]?ca)?|m?tls1?[0-9.]{0,3}|scram-sha-(?:1|256|512)|cram-md5|oauth2)"
    r"|v?[0-9]{1,4}(?:\.[0-9]{1,4}){1,3}(?:[-+][0-9A-Za-z.\-]{1,40})?"
)
_SSH_KEY_TYPE = re.compile(
    r"ssh-(?:ed25519|rsa|dss)|ecdsa-sha2-nistp(?:256|384|521)|sk-ssh-ed25519@openssh\.com"
)


def auth_value(value: str) -> bool:
    """A credential under the bare key "auth", not what payment and mail logs put there: a
    card payment's approval code (auth=931924, auth=7YE18Y), a count (Postfix's auth=0/1), a
    mode, one lower-case word (sendmail's AUTH=server), a method's name (auth=Kerberos,
    auth=x509CA), a version (charts/auth:3.28.7), or an SSH public key's type ("public key
    auth: ssh-ed25519 AAAA…", the key itself public)."""
    core = value.strip("\"'")
    if core.isalpha() and (core.islower() or core.lower() in _AUTH_METHODS) and len(core) <= 12:
        return False
    if _SSH_KEY_TYPE.fullmatch(core) or _AUTH_METHOD_OR_VERSION.fullmatch(core):
        return False
    return not _APPROVAL_CODE.fullmatch(core) and not_a_count(value)


# A name and a number: a session labelled by who opened it, not issued to them
# (GitHubActions-5998044862, terraform-20240507, botocore-session-1712345678, an STS session
# named after its user and the time: jmueller596-1714340359).
_LABELLED_NUMBER = re.compile(
    r"[A-Za-z]+(?:[-_.][A-Za-z]+)*[-_.][0-9]+|[A-Za-z][A-Za-z0-9._\-]{0,63}[-_.][0-9]{9,13}"
)
# Stripe Checkout Session ids, which Stripe puts in the success URL (?session_id=cs_live_...):
# an object's id, useless without the account's secret key.
_PUBLIC_SESSION_IDS = ("cs_live_", "cs_test_")


_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


_OPC_UA_NODE_ID = re.compile(r"ns=[0-9]{1,5};[isgb]=[^\s;]{1,256}")


def _issued_session(core: str) -> bool:
    """Not a label and a number, not a public id, and not a UUID: OpenTelemetry's session.id,
    RUM and analytics visits, Keycloak's session_state, a mail server's connection are UUIDs,
    while the session ids that log a client in (Java's, PHP's, Rails', Express', Django's) are
    not written with dashes, and a Cookie header's values are masked there whatever they are.
    Nor an OPC UA node id, which servers name sessions by (ns=1;g=<uuid>)."""
    return not (
        _LABELLED_NUMBER.fullmatch(core)
        or core.startswith(_PUBLIC_SESSION_IDS)
        or _UUID.fullmatch(core)
        or _OPC_UA_NODE_ID.fullmatch(core)
        or _HOST_NAME.fullmatch(core)
    )


# A host's name (Diameter's Session-Id begins with its origin host: pgw1.epc.example.net;…)
_HOST_NAME = re.compile(r"[a-z0-9\-]+(?:\.[a-z0-9\-]+){1,8}\.[a-z]{2,12}")


def session_value(value: str) -> bool:
    """A session id as servers issue them: 8+ characters, not all digits (analytics "session
    ids" are counters and timestamps), not a label and a number, and not a placeholder."""
    core = value.strip("\"'")
    return (
        len(core) >= 8
        and not core.isdigit()
        and _issued_session(core)
        and not_placeholder_like(core)
    )


# A Twilio resource id (SM… message, VE… verification, CA… call): two capitals, 32 hex digits.
_TWILIO_SID = re.compile(r"[A-Z]{2}[0-9a-f]{32}")


# Splunk's search job ids, which its logs call "sid": scheduler__admin__search__RMD5…_at_…_478;
# and a Windows security identifier (SID : S-1-5-21-…).
_SID_NOT_A_SESSION = re.compile(
    r"\w{1,40}__\w{1,80}_at_[0-9]{9,11}_[0-9]{1,9}|S-1-[0-9]{1,3}(?:-[0-9]{1,10}){1,15}"
)


@functools.cache
def _bip39_words() -> frozenset[str]:
    """BIP-0039's English word list (2048 words; the file's SHA-256 is the standard's
    2f5eed53a4727b4bf8880d8f3f199efc90e58503646d9ff8eff3a2ed3b24dbda), read on first use."""
    text = (Path(__file__).parent / "bip39_english.txt").read_text(encoding="ascii")
    return frozenset(text.split())


def seed_phrase(value: str) -> bool:
    """A wallet's recovery phrase: 12, 15, 18, 21 or 24 words, every one from BIP-0039's list.
    Prose that long without a word of one or two letters is rare, and prose whose every word
    is on the list rarer still (the checksum is not asked for: a phrase typed wrong is still
    the phrase)."""
    words = value.split()
    return len(words) in (12, 15, 18, 21, 24) and all(w in _bip39_words() for w in words)


def not_uuid(value: str) -> bool:
    """``not_placeholder_like``, and not a UUID: AWS names an idempotency token clientToken."""
    return not _UUID.fullmatch(value.strip("\"'")) and not_placeholder_like(value)


def _letters_and_digits(core: str, least: int) -> bool:
    """At least ``least`` characters, letters and digits among them: the shape of an issued
    key or session id, not of a word, a count or a state."""
    return (
        len(core) >= least
        and any(c.isdigit() for c in core)
        and any(c.isalpha() for c in core)
    )


def session_cookie(value: str) -> bool:
    """A session cookie's value under a name as generic as "session" or "sid": 20+ characters
    with letters and digits (a state or a count under that name is none: session=finished; a
    16-character id is a log's correlation id: Dovecot's session=AtP3v2QHdT8vEBNu), and not
    one of Twilio's resource ids, Splunk's search ids or Windows' security identifiers, which
    their logs also call "sid"."""
    core = value.strip("\"'")
    return (
        _letters_and_digits(core, 20)
        and not _TWILIO_SID.fullmatch(core)
        and not _SID_NOT_A_SESSION.fullmatch(core)
        and _issued_session(core)
        and not_placeholder_like(core)
    )


def one_time_code(value: str) -> bool:
    """A one-time password as authenticators and SMS show them: 4 to 10 digits."""
    core = value.strip("\"'")
    return 4 <= len(core) <= 10 and core.isascii() and core.isdigit()


def card_security_code(value: str) -> bool:
    """A card's security code under a name shared with other things: digits, 3 or 4 on a payment
    card (CVV2, CVC2, CID), up to 12 on a gift card; SAP Business One calls a business partner's
    code CardCode (V-DYQ71, VEND-9264)."""
    core = value.strip("\"'")
    return 3 <= len(core) <= 12 and core.isdigit()


def random_token(value: str) -> bool:
    """A value that looks generated, not written: upper case, lower case and digits together,
    or 20+ hex digits with letters and digits (GitHub's OAuth codes, Sentry's keys), and no
    placeholder. Error codes (INVALID_GRANT), promo codes (SUMMER2024SALE), user names,
    encoded URLs and Stripe's object ids (tok_…) fail."""
    core = value.strip("\"'")
    # a mask, a template, a reference, an object's id (tok_…)
    return not_placeholder_like(core) and _random_shape(core)


def _random_shape(core: str) -> bool:
    """random_token's test of the characters, for a value known to be no placeholder."""
    if "%3a%2f%2f" in core.lower():
        return False  # a URL-encoded URL
    has_digit = any(c.isdigit() for c in core)
    if has_digit and any(c.isupper() for c in core) and any(c.islower() for c in core):
        return True
    hex_only = core.isalnum() and all(c in _HEX for c in core.lower())
    return len(core) >= 20 and has_digit and hex_only and not core.isdigit()


_HEX_128 = re.compile(r"[0-9A-Fa-f]{32}")
_HEX_DES = re.compile(r"[0-9A-Fa-f]{16}|[0-9A-Fa-f]{32}|[0-9A-Fa-f]{48}")


def _hex_key(value: str, shape: re.Pattern[str], more_distinct_than: int) -> bool:
    """A key in hex of ``shape``: letters and digits both, and more distinct digits than a
    blank, zeroed or test field holds."""
    core = value.strip("\"'")
    return (
        shape.fullmatch(core) is not None
        and not core.isdigit()
        and not core.isalpha()
        and len(set(core.lower())) > more_distinct_than
    )


def key_128_hex(value: str) -> bool:
    """A 128-bit key in hex (a SIM's Ki or OPc): 32 hex digits, letters and digits both and
    more than two distinct ones (not a test SIM's all-zero key or a blank field)."""
    return _hex_key(value, _HEX_128, 2)


def des_key_hex(value: str) -> bool:
    """A payment HSM's key in clear: one, two or three DES key lengths in hex (16, 32 or 48
    digits), letters and digits both and more than four distinct ones (not a blank, zeroed or
    all-F field)."""
    return _hex_key(value, _HEX_DES, 4)


def long_token(value: str) -> bool:
    """16 characters or more with letters and digits, no placeholder and no label with a
    number: a key as API platforms issue them (3scale's and VesselFinder's user_key), where the
    same name elsewhere holds a short account label (a feature flag's user_key=acct_8535) or the
    user's id, a UUID as feature-flag services log it (LaunchDarkly's user_key=b6114fdb-…)."""
    core = value.strip("\"'")
    return (
        _letters_and_digits(core, 16)
        and not _LABELLED_NUMBER.fullmatch(core)
        and not _UUID.fullmatch(core)
        and not_placeholder_like(core)
    )


def generated_token(value: str) -> bool:
    """``random_token``, or 20+ letters of both cases spread like a random draw (entropy of 4.2
    bits a character or more): a magic link's token may hold no digit, a slug or a CamelCase
    name (MyAccountSettingsPage) is not spread so."""
    core = value.strip("\"'")
    if not not_placeholder_like(core):  # asked once: both tests below need it
        return False
    return _random_shape(core) or (
        len(core) >= 20
        and any(c.isupper() for c in core)
        and any(c.islower() for c in core)
        and entropy_at_least(core, 4.2)
    )


def password_value(value: str) -> bool:
    """A value under a password-like key: not a placeholder, and not an absolute path
    (``PWD=/home/deploy`` in sudo and shell logs is the working directory)."""
    if not not_placeholder_like(value):
        return False
    core = value.strip("\"'")
    return not (
        core.startswith(("/", "~/"))
        and all(c.isalnum() or c in "/._-~" for c in core)
        and not _has_random_segment(core)
    )


# c * log2(c) for the character counts of typical secrets, looked up instead of computed.
_C_LOG2_C = tuple(c * math.log2(c) if c else 0.0 for c in range(1025))


def shannon_entropy(value: str) -> float:
    """Bits per character of ``value``'s own character distribution.

    H = log2(n) - sum(c * log2(c)) / n over the character counts c (the same quantity as
    -sum(p * log2(p)), with the per-count terms from a table).
    """
    n = len(value)
    if not n:
        return 0.0
    counts = Counter(value).values()
    if n < len(_C_LOG2_C):
        total = sum(map(_C_LOG2_C.__getitem__, counts))
    else:
        total = sum(c * math.log2(c) for c in counts)
    return max(0.0, math.log2(n) - total / n)


def entropy_at_least(value: str, bits: float) -> bool:
    """Whether ``shannon_entropy(value) >= bits``, mostly decided from the number of distinct
    characters alone.

    With k distinct characters in n, the entropy is at most log2(k) (all equally frequent) and
    at least that of one character n-k+1 times and the others once; only values between the
    two bounds are counted in full. Random tokens, the usual case, have enough distinct
    characters to clear the lower bound.
    """
    n = len(value)
    if not n:
        return bits <= 0.0
    k = len(set(value))
    if math.log2(k) < bits:
        return False
    most = n - k + 1
    lowest = math.log2(n) - _c_log2_c(most) / n  # the others, once each, add c*log2(c) = 0
    if lowest >= bits:
        return True
    return shannon_entropy(value) >= bits


def _c_log2_c(c: int) -> float:
    return _C_LOG2_C[c] if c < len(_C_LOG2_C) else c * math.log2(c)


VALIDATORS: dict[str, Validator] = {
    "luhn": luhn,
    "card_number": card_number,
    "spoken_card_number": spoken_card_number,
    "spoken_ssn": spoken_ssn,
    "ssn": ssn,
    "mod97": mod97,
    "github_crc32": github_crc32,
    "npm_crc32": npm_crc32,
    "jwt": jwt,
    "sasl_plain": sasl_plain,
    "aws_key_id": aws_key_id,
    "aws_secret_key": aws_secret_key,
    "not_placeholder_like": not_placeholder_like,
    "password_value": password_value,
    "session_value": session_value,
    "session_cookie": session_cookie,
    "random_token": random_token,
    "long_token": long_token,
    "des_key_hex": des_key_hex,
    "key_128_hex": key_128_hex,
    "generated_token": generated_token,
    "one_time_code": one_time_code,
    "card_security_code": card_security_code,
    "auth_value": auth_value,
    "not_a_count": not_a_count,
    "not_resource_name": not_resource_name,
    "not_uuid": not_uuid,
    "seed_phrase": seed_phrase,
}
