"""Validators that judge a value by its look: `random_token` (generated, not written),
`session_value` (a session id as servers issue them), `not_placeholder_like`, and `ssn` (a
number written as people write SSNs, not text that holds one)."""

from __future__ import annotations

import pytest

from redactor.engine import Redactor
from redactor.engine.validators import (
    auth_value,
    generated_token,
    not_a_count,
    not_placeholder_like,
    not_resource_name,
    password_value,
    random_token,
    session_value,
    ssn,
)


@pytest.mark.parametrize(
    "value",
    [
        "SplxlOBeZQQYbYS6WxSbIA",  # OAuth code, mixed case and digits
        "4%2F0AX4XfWh5Zx9kQ3LmN0pR5",  # URL-encoded, still mixed
        "9f2c4e6a8b0d1f3e5a7c9b1d3f5e7a9c",  # Sentry key: 32 hex digits
        "3f1b2c4d5e6f7a8b9c0d",  # GitHub OAuth code: 20 hex digits
    ],
)
def test_generated_values_are_random_tokens(value: str) -> None:
    assert random_token(value)


@pytest.mark.parametrize(
    "value",
    [
        "ERR_CONNECTION_REFUSED",  # error code: no lower case, no digit
        "SUMMER2024-FREESHIP",  # promo code: no lower case
        "do_not_honor_generic_decline",
        "fabrikam-fiber-engineering",  # organisation name
        "12345678901234567890",  # digits alone
        "https%3A%2F%2Fshop.Example%2Fp1",  # an encoded URL, even with mixed case
        "7c9e6679-7425-40de-944b-e07fc1f90ae7",  # a UUID: hex with dashes
    ],
)
def test_written_values_are_not_random_tokens(value: str) -> None:
    assert not random_token(value)


def test_session_values_look_issued() -> None:
    assert session_value("966D3C1F6FAF0C1E3BF3F0F8F2C7D3A1")
    assert session_value("s%3AZx9Qw3kLmN0pR5tYvB2c.AbC")
    for value in ("1715065846", "tab-3", "missing", "anonymous", ":session_id"):
        assert not session_value(value), value
    # a label and a number; a Stripe Checkout Session's id (public: in its success URL)
    for value in ("GitHubActions-5998044862", "cs_live_a1CrxuTFAFoP2Nrf6nOB2ZIiZIb1gt9sZzpKHr"):
        assert not session_value(value), value


@pytest.mark.parametrize(
    "value",
    [
        "(sensitive value)",
        "(known",
        "arn:aws:secretsmanager:us-east-1:1:secret:x",
        ":user_id",
        "file:/run/secrets/access_token",  # a reference to a file that holds it
        "env:PRIVATE_KEY",  # a reference to an environment variable
        'PostAuthenticationToken(user="ana@example.com", authenticated=true)',  # a repr
        "settings.db.password",  # a name in code
        "0/1",  # a count of a total (Postfix's auth=0/1)
        "WPA2_PSK",  # a constant's name (auth=WPA2_PSK)
        "-668573621372679220",  # a signed number (a Cassandra partition token)
        "tok_Vmc4F1LbhOTKeMKT49iPf7l5",  # Stripe's ids for its objects: references
        "pm_ACl24Ch8n0rJtcqxTsRTUJ0x",
        "seti_1NqA8bL3kLmN0pR5tYvB2c",
        "sk-...QCyF",  # a key cut down for display
        "AKIA\u2026WXYZ",
        "your-key-here",  # an example file's sample values
        "YOUR_API_TOKEN",
        "paste_token_here",
        "connected (token hidden)",  # another tool's mask, in words
        "**redacted**",
        "[PROTECTED]",
        "Read-Host",  # a PowerShell cmdlet: $pw = Read-Host -AsSecureString
        "System.Security.SecureString",  # a .NET type's name in place of its value
        "%DB_PASS%",  # a Windows environment variable
        "%3Cyour-token%3E",  # a sample value, URL-encoded
        "%5BFILTERED%5D",
        "encrypted",  # a state where a value would be
        "EAAXXXXXXXXXXXXXXXX",  # masked but for a prefix
        "XXXX-XXXX-XXXX-3424",  # masked but for the last digits
        "%2A%2A%2A%2A",  # a mask, URL-encoded
        "pk.eyJ1IjoiaG9vbGktbWFwcyIsImEiOiJvZmw3a3VwMjA2Z2U3MHpx",  # public by design: Mapbox
        "sq0idp-patT9VLCB_S2uwvdqeD0tY",  # a Square application id
        "live_8CQM422J02L0H5CLBUUSARXPXELPHQGX",  # an Adyen client key
        "f7d8cb75\u2026",  # a key's first characters, shown for display
        # a public key's DER in base64 (Google Play's licence key is one)
        "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAO1OUuFcvWfl6kkMj3dllMLlXWBa98AykD6Tf",
        "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEjp8Lx0bV6sYbU1m2Qx7nR2c5T8gH0aZk",
        "from",  # api_key=from env
        "clever_district_token",  # a secret's name: token=clever_district_token (env)
        "db_password",
        "apikey|[redacted]",  # another tool's mask after the key's name
    ],
)
def test_placeholders_markers_and_bind_parameters_are_not_values(value: str) -> None:
    assert not not_placeholder_like(value)


def test_a_password_is_not_a_placeholder() -> None:
    assert not_placeholder_like("Hunter2pass!")
    assert not_placeholder_like("(Hunter2)")  # parentheses around more than a word
    # Stripe's secrets are not object ids
    assert not_placeholder_like("pi_3KVweUWYbVidiJLk4FNTQiHS_secret_liC5RtxxQrLd0RcQu16oJ3fxB")
    assert not_placeholder_like("rk_live_51AbCdEfGhIjKlMnOpQrStUvWx")
    # a private key's DER (PKCS#8) is no public key
    assert not_placeholder_like("MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7")
    assert not_placeholder_like("f7d8cb75e1a09b34")
    assert not_placeholder_like("correct_horse_battery_staple")  # words, not a name
    # a password with dots in it, one that starts with "your", words that are no mask
    assert not_placeholder_like("tr0ub4dor...x9Zq2w")
    assert not_placeholder_like("yourMom1987!")
    assert not_placeholder_like("correct horse battery staple")


@pytest.mark.parametrize(
    "value",
    [
        "DB_PASSWORD,",  # connect(host=DB_HOST, password=DB_PASSWORD, ...)
        "settings.WEBHOOK_SECRET",
        "process.env.PGPASSWORD",
        "self.password",
        "pika.PlainCredentials",
        "getpass.getpass(",
        "cfg[",
        "[FILTERED]",  # Rails
        "hidden",  # Kafka's [hidden]
        "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER",  # Ansible
        "gho_****************************ab12",  # gh auth status
    ],
)
def test_code_and_other_tools_masks_are_not_values(value: str) -> None:
    assert not not_placeholder_like(value)


@pytest.mark.parametrize(
    "value",
    [
        "hvs.rZJiMAUpxL9J3a3S3OyjszNt",  # dotted prefixes with random case and digits
        "ZBwgrkHxGuJEhp1bQ9y0R.U",
        "ya29.a0AfH6SMBx1234567890",
        "X7Q_9ZK2",
    ],
)
def test_tokens_with_dots_or_underscores_are_values(value: str) -> None:
    assert not_placeholder_like(value)


@pytest.mark.parametrize(
    "value",
    [
        "/run/secrets/app",
        "~/.aws/credentials",
        "./secrets/db.txt",
        "$(kubectl",
        "$dbPass",
        "vault:secret/data/prod/db#password",
        "ref+vault://secret/app#pw",
        "op://prod/db/password",
    ],
)
def test_paths_references_and_variables_are_not_values(value: str) -> None:
    assert not not_placeholder_like(value)


@pytest.mark.parametrize(
    "value",
    # base64 secrets that begin with "/" and hold another one; a default password
    ["/E0xMviFaTIb82n/ywFDcwsEcy7LbKEmmWZm4WdcPqshpZzDI9iVypz6ow8nJ1", "changeme"],
)
def test_slashed_base64_and_default_passwords_are_values(value: str) -> None:
    assert not_placeholder_like(value)
    assert password_value(value)


def test_resource_names_are_told_from_passphrases() -> None:
    for name in ("app-credentials-v20240507", "prod/orders/db-password-v7", "kid-2024-05-07-rsa01"):
        assert not not_resource_name(name), name
    # Words joined by dashes alone may be a passphrase; random secrets have no words.
    for value in ("cinder-lagoon-copper4", "fa4e3176813e02ea68ef786e4d3cea27"):
        assert not_resource_name(value), value


def test_counts_under_pass_are_not_passwords() -> None:
    for count in ("118", "118/120", "98.3%"):
        assert not not_a_count(count), count
    assert not_a_count("Hunter2pass!")


@pytest.mark.parametrize(
    "value",
    [
        "536-22-1234",
        "536221234",
        " 536 22 1234 ",
        "536 - 22 - 1234",
        "536.22.1234",
        "536%2022%201234",
        "536%2D22%2D1234",
        "536+22+1234",
        "５３６２２１２３４",
    ],
)
def test_ssn_written_any_usual_way_is_an_ssn(value: str) -> None:
    assert ssn(value)


@pytest.mark.parametrize(
    "value", ["SSN 536221234", "536-22-1234 (verified)", "000-12-3456", "536-22-12345"]
)
def test_ssn_validator_takes_only_a_valid_number(value: str) -> None:
    assert not ssn(value)


def test_a_sentence_under_an_ssn_key_keeps_its_words(engine: Redactor) -> None:
    """The key-name rule takes a number; a message under the key is text, whose SSN alone
    is masked."""
    line = """ValidationError: {'ssn': ["SSN '826-10-0358' already registered."]}"""
    out = engine.redact(line)
    assert "826-10-0358" not in out
    assert "already registered" in out


def test_dotted_passphrases_are_values() -> None:
    """Words joined by dots are a passphrase, unless an owner of code comes first."""
    assert not_placeholder_like("correct.garden.river.sunset")
    assert not_placeholder_like("marble.river.silver.violet")
    assert not not_placeholder_like("self.db.password")
    assert not not_placeholder_like("config.database.password")


def test_auth_values_are_credentials_not_approval_codes_or_counts() -> None:
    assert auth_value("ZGV2OnMzY3IzdHBhc3M=")
    assert auth_value("deploy:Tr0ub4dor3x")
    for value in ("931924", "7YE18Y", "0/1"):  # approval codes, a count
        assert not auth_value(value), value


def test_generated_tokens_may_hold_no_digit() -> None:
    # a magic link's token; 40 hex digits
    assert generated_token("LhdrHFzcITYoPKTpNPwDOnIzBvLLlOufkVMCgfyrbrR")
    assert generated_token("94fbcd7dfffeeb5c2327d955a3940877cb8680ce")
    # a slug, a CamelCase name, a UUID
    for value in ("settings-notifications-preferences", "MyAccountSettingsPage",
                  "7c9e6679-7425-40de-944b-e07fc1f90ae7"):
        assert not generated_token(value), value
