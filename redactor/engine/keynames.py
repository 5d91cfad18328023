"""Key-name rules: the value under a sensitive key is masked whatever it looks like.

Two views of the same rules. In structured values (dicts), :class:`KeyNameMatcher` decides from
the key alone. In text, each key-name rule becomes an ordinary pattern :class:`Rule` whose
``secret`` group is the value in any of the syntaxes logs use for ``key<sep>value``: JSON,
escaped JSON inside a string, Python reprs, logfmt, query strings, headers, env dumps, YAML, SQL.

Key grammar: a key *matches* a name when, ignoring case and the separators ``_ - .``, the key
equals the name or ends with it (``db_password``, ``SMTP_PASSWORD``, ``x-api-key``,
``secretAccessKey``), with an optional number after it (``access_token_2``); ``exact_names``
match only the whole key (``pass``, ``pw``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Any

from redactor.engine.rules import KeyNameRule, Rule, normal_key_name
from redactor.engine.validators import not_placeholder_like

MAX_VALUE_CHARS = 4096

# Credential schemes kept visible in front of the masked value ("Bearer [password#...]").
# The patterns are case-sensitive except where case does not matter (key names, schemes,
# URL escapes): a case-insensitive pattern costs the regex engine about 25% more per try.
# Vendors name schemes of their own after their product, ending in Key or Token (SocureApiKey,
# GenieKey): any such capitalised word counts, and a versioned one (Talon.One's ApiKey-v1).
_SCHEME_WORDS = (
    r"(?:(?i:Bearer|Basic|Token|Digest|Bot|Negotiate|SSWS|OAuth|ApiKey(?:-v[0-9])?|Api-Token|Splunk"
    r"|DeepL-Auth-Key|IAF)|[A-Z][A-Za-z\-]{1,30}(?:Key|Token))"
)
_SCHEMES = rf"(?:{_SCHEME_WORDS}\s+)?"
# Azure Storage's "SharedKey account:signature": the account name before the colon is no prose.
_ACCOUNT_SCHEME = r"(?i:SharedKey(?:Lite)?\s+)"
# What an unquoted value is made of; "?" too, but only where no name= follows it (see
# _pattern_source).
_BARE_CHAR = r"""[^\s"'`,;&(){}\[\]<>\\?]"""
# A bracket inside an unquoted value, between two of its characters, is part of it (generated
# passwords hold them: keyStorePassword=c0p1K}KYrfnBR8, password=3GvouPC~[iIuBMhP); one that
# ends it (params={password=abc}) or opens it (password=[FILTERED]) is not.
_INNER_BRACKET = rf"[\[\]{{}}()](?={_BARE_CHAR})"
# An empty value in logfmt ("password= host=db"): after "=" and spaces, another key=value is
# the next field, not the value, and so is a lower-case key with an empty value of its own
# ("password= token= host=db"). A value ending in base64 padding (dDN4S1lTWlF=) is one, also
# before an escaped line break (PrivateKey = EHzK…o34=\nAddress = …), and so is anything
# after ":" (password: Pa=ss9). A field's name has two characters at least: in
# "keyPassword = F=mT$…" the value begins with "F=".
_NEXT_FIELD = (
    r"(?!(?<==[ \t]{1,3})(?:[A-Za-z_][\w.\-]{1,63}=(?![=\s\"',;}\]\\]|$)"
    r"|[a-z_][a-z_.\-]{0,63}=(?:[ \t]|$)))"
)
# Before a quoted value: a Python bytes/raw/unicode prefix (b'...'), SQL Server's national
# string prefix (@password = N'...'), or the type and length PHP's var_dump prints
# (["pass"]=> string(20) "...").
_STRING_PREFIX = r"(?:[bBrRuU]{1,2}|N|string\([0-9]{1,6}\) )?"
# YAML's core tags before a plain value (api_token: !!str abc): kept, the value masked. Other
# tags (!vault |, !Ref Name) stand for a value kept elsewhere and are left alone.
_YAML_TAG = r"(?:!!(?:str|binary)[ \t]{1,3})?"
# A plain word, as prose has them after a colon: lower case, capitalised, all capitals, or
# words run together in CamelCase, maybe with an acronym (Required, geändert, NONE,
# PasswordExpired, OpenAI, HTTPClient), of any script; not letters of mixed case at random
# (pCsQAISHim, ICNgAvcckMFeXS: a password).
_PLAIN_WORD = (
    r"(?:[^\W\d_][\p{Ll}\p{Lo}\p{Lm}\p{M}]{0,15}|\p{Lu}{1,16}"
    r"|\p{Lu}{0,5}(?:\p{Lu}\p{Ll}{1,15}){1,4}\p{Lu}{0,5})"
)
# What ends a plain word: spaces, quotes and brackets, punctuation, and the CJK ones; "." and
# ":" only before a space or the end (in "default:production.3717a9..." the word begins a
# token), and "!" before those or a closing bracket (a GraphQL type, $password: String!),
# where "kilowatt!!038" goes on.
_END_OF_WORD = (
    r"""(?:[\s"'`,;&(){}\[\]<>\\"""
    r"""\u3001\u3002\uff01\uff08\uff09\uff0c\uff1a\uff1b\uff1f]|[.:](?!\S)|!(?![^\s)\]},;]))"""
)
# In a trigger (bytes), every byte that can start a character the patterns' \s matches
# (Unicode spaces too), but not a newline: see rules/README.md.
_TRIGGER_SPACE = r"[\t\x0b-\r\x1c-\x20\x80-\xff]"
# The most spaces and tabs between a key, its separator and its value (aligned columns).
_ALIGNMENT = 40
# After a name: a number (access_token_2, Vault's "Unseal Key 1:"), a version
# (ses_smtp_password_v4, api_key_v2) or an environment variable's letter (OCPI's
# CREDENTIALS_TOKEN_A), and a note that the value is base64 (API_TOKEN_B64, password_base64).
_KEY_SUFFIX = (
    r"(?:[_\- ]?[0-9]{1,2}|[_\-][Vv][0-9]{1,2}|_[A-Z])?(?:[_\-](?:[Bb]64|[Bb][Aa][Ss][Ee]64))?"
    # the encoding in parentheses: shared_secret(hex)=…, dbPassword (base64)=…
    r"(?: ?\((?:hex|HEX|base64|b64|utf-?8)\))?"
    # an index: an array's element in a query string or a config dump (password[0]=…, gtk[1]=…)
    r"(?:\[[0-9]{1,3}\])?"
)


# Name/value pairs, where one field names the key and a sibling holds its value: Kubernetes
# env ({"name": "DB_PASSWORD", "value": "..."}), AWS tags and stack parameters ({"Key": ...,
# "Value": ...}, ParameterKey/ParameterValue), .NET and Spring XML config (<add key="ApiKey"
# value="..."/>, <property name="password" value="..."/>).
_NAME_FIELDS = ("name", "Name", "key", "Key", "ParameterKey", "parameterKey")
VALUE_FIELDS = frozenset({"value", "Value", "ParameterValue", "parameterValue"})
_NAMED_VALUE_MAX_FIELDS = 8  # a pair, maybe with a type or a description; not a record


def _name_regex(name: str) -> str:
    """``api_key`` → ``api[_\\-.]?key``: the separators between words are optional.

    Stage 1 ignores case for ASCII letters only, so a name with other letters (пароль) is
    matched as written, in capitals, or capitalised, and only so, in the pattern as in its
    trigger.
    """
    if name.isascii():
        return _words_regex(name)
    spellings = dict.fromkeys([name, name.upper(), name.capitalize()])
    return "(?-i:" + "|".join(_words_regex(s) for s in spellings) + ")"


def _words(name: str) -> list[str]:
    """The words of a key name (``api-key``, ``api_key``, ``api key`` -> ``api``, ``key``)."""
    return [w for w in name.replace("-", "_").replace(" ", "_").split("_") if w]


def _words_regex(name: str) -> str:
    # Plain str and re calls: this runs for every name of every key-name rule at start-up,
    # where the regex module's own split and escape cost milliseconds. Words may be joined by
    # a space too, as people and CLIs write them: "Client Secret: ...", "Secret ID   = ..."
    # (nomad), "mot de passe".
    return r"[_\-. ]?".join(re.escape(w) for w in _words(name))


class KeyNameMatcher:
    """Maps a dict key to the key-name rule that covers it (or None), with a small cache."""

    _CACHE_LIMIT = 4096

    def __init__(self, rules: tuple[KeyNameRule, ...]) -> None:
        self._suffixes = [(normal_key_name(n), r) for r in rules for n in r.names]
        self._exact = {normal_key_name(n): r for r in rules for n in r.exact_names}
        self._not = {r.id: tuple(normal_key_name(n) for n in r.not_names) for r in rules}
        self._cache: dict[str, KeyNameRule | None] = {}

    def __bool__(self) -> bool:
        return bool(self._suffixes or self._exact)

    def match(self, key: str) -> KeyNameRule | None:
        try:
            return self._cache[key]
        except KeyError:
            pass
        # access_token_2 is an access token too, and so is API_TOKEN_B64, encoded; a name
        # that ends in a digit itself (ha1, cv2) is looked up with it
        full = normal_key_name(key).removesuffix("base64").removesuffix("b64")
        norm = full.rstrip("0123456789")
        found = self._exact.get(norm)
        if found is None and norm != full:
            found = self._exact.get(full)
        if found is None:
            for suffix, rule in self._suffixes:
                if norm.endswith(suffix) or (norm != full and full.endswith(suffix)):
                    if not norm.endswith(self._not[rule.id]):
                        found = rule
                    break
        if len(self._cache) >= self._CACHE_LIMIT:
            self._cache.clear()
        self._cache[key] = found
        return found

    def named_value(self, mapping: dict[Any, Any]) -> tuple[Any, KeyNameRule] | None:
        """For a name/value pair such as ``{"name": "DB_PASSWORD", "value": "..."}``: the
        value field's key and the rule covering the name; None for any other dict."""
        if len(mapping) > _NAMED_VALUE_MAX_FIELDS or mapping.keys().isdisjoint(VALUE_FIELDS):
            return None  # nearly every dict: a few lookups decide
        value_key = next(k for k in mapping if k in VALUE_FIELDS)
        for field in _NAME_FIELDS:
            name = mapping.get(field)
            if type(name) is str:
                rule = self.match(name)
                return (value_key, rule) if rule is not None else None
        return None


def text_rules(rules: Sequence[KeyNameRule]) -> tuple[Rule, ...]:
    """The pattern rules that find ``rules``' keys and their values in free text, in order.

    Each has a pattern of its own. Their value grammar is the same, but one pattern for all
    (each rule's names in a named group) tried at a known name costs about twice as much as
    the rule's own: the alternation of every rule's names is most of a match there. The
    compiled patterns are kept between runs (``compiled.py``), so their number costs little.
    """
    return tuple(_text_rule(rule) for rule in rules)


def pattern_source(rule: KeyNameRule) -> str:
    """The stage-2 pattern of ``rule``: one of its names, then a value in any of the forms
    below. It starts at the name, not at the key's first character: the prefix of a longer
    key (``db_`` in ``db_password``) needs no matching, and starting on a literal lets the
    regex engine skip ahead instead of trying a key at every position."""
    return _pattern_source(_key_source(rule), rule.value)


def _key_source(rule: KeyNameRule) -> str:
    alternatives = []
    if rule.names:
        names = "|".join(_short_name_guard(n) + _name_regex(n) for n in rule.names)
        # not_names: a longer key ending in a name is left alone (next_token is pagination)
        prefixes = [_not_name_prefix(n, rule.names) for n in rule.not_names]
        if prefixes:
            names = rf"(?<!(?:{'|'.join(prefixes)})[_\-.]?)(?:{names})"
        alternatives.append(names)
    if rule.exact_names:
        exact = "|".join(_name_regex(n) for n in rule.exact_names)
        # A whole key, maybe marked private by one leading underscore (.npmrc's ":_auth="), or
        # the last part of a dotted one (knowledge.pin=…). Test runners' status lines ("---
        # PASS: TestLogin", automake's "PASS: t/auth.sh") name no key.
        alternatives.append(
            rf"(?:(?<![A-Za-z0-9_.\-])|(?<=(?<![A-Za-z0-9_.\-])_)|(?<=[A-Za-z0-9]\.))"
            rf"(?!(?-i:PASS: ))(?:{exact})"
        )
    return "|".join(alternatives)


def _short_name_guard(name: str) -> str:
    """What must stand before a name of one or two letters (pw): not a letter or digit, or a
    lower-case letter before it in capitals (dbPW). A longer key ending in them by chance
    (the code "F4B5-TYPH-GXPW") names nothing."""
    if len(normal_key_name(name)) > 2:
        return ""
    return r"(?:(?<![A-Za-z0-9])|(?<=(?-i:[a-z]))(?=(?-i:[A-Z])))"


def _not_name_prefix(not_name: str, names: Sequence[str]) -> str:
    """The words of ``not_name`` before the name it ends in, as a pattern (next_token ->
    ``next``, next_page_token -> ``next[_\\-.]?page``): what must not stand before the name."""
    norm = normal_key_name(not_name)
    name = max((n for n in names if norm.endswith(normal_key_name(n))), key=len)
    words = _words(not_name)
    return _words_regex("_".join(words[: len(words) - len(_words(name))]))


def _pattern_source(names: str, value_kind: str) -> str:
    # A name right after ":<12-digit account id>:" is the resource type of an AWS ARN
    # (arn:aws:secretsmanager:...:123456789012:secret:prod/db), not a key.
    # Nor a word of a URN (urn:globus:auth:scope:..., urn:ietf:params:oauth:token-type:jwt),
    # though an XML element's namespace prefix may be "urn" (<urn:password>, as SOAP clients
    # name a service's namespace). Both looked at only after a colon.
    key = (
        r"(?:(?<!:)|(?<=:)(?<!:[0-9]{12}:)(?<!(?<![</])(?i:urn)(?::[\w.\-]{1,60}){0,8}:))(?i:"
        + names
        + r")"
        + _KEY_SUFFIX
    )
    if value_kind == "line":
        bare = rf"""(?P<secret>[^\s"'\\][^\r\n"'\\]{{0,{MAX_VALUE_CHARS - 1}}})"""
    elif value_kind == "cookies":
        # A cookie's value may be quoted (sid="abc"; Path=/): a quote right after "=" opens
        # one, which runs to the next quote. A bar before a header's name ends the header:
        # header dumps join their fields with one (Apache's mod_log_forensic:
        # |Cookie:a=b|x-api-key:…); any other is the cookie's (oauth2-proxy's value|time|sig,
        # Roblox's .ROBLOSECURITY=_|WARNING:-DO-NOT-SHARE-THIS.…|_hex, whose colon no header's
        # value follows).
        quoted = rf'(?<==)"[^"\r\n\\]{{0,{MAX_VALUE_CHARS}}}"'
        inner_bar = r"\|(?![A-Za-z][\w\-]{0,60}:(?!-))"
        # No header's value begins with "{": an object there is a session library's cookie
        # options (express-session's cookie: { secure: true, … }), whose keys are their own.
        bare = (
            rf"""(?!\{{)(?P<secret>(?:[^\s"'\\|]|{quoted})"""
            rf"""(?:[^\r\n"'\\|]{{1,{MAX_VALUE_CHARS}}}+|{inner_bar}|{quoted}){{0,{MAX_VALUE_CHARS}}})"""
        )
    else:
        # Not a call in code (openai_api_key=SecretStr('**********'), token=get_token()): a
        # name, with dots or dashes maybe, right before "(" (Dovecot's "auth: passwd-file(…)";
        # a key with other symbols is no name), nor a dotted name subscripted (Alloy's
        # password = remote.kubernetes.secret.creds.data["password"]).
        # Nor cut short by a template (password: postgres://app:${DB_PASSWORD}@db).
        # Nor the first parameter of a scheme's list (Digest username="...", OAuth
        # oauth_consumer_key="..."): its secrets are parameters with names of their own.
        # Lower-case names only: base64 padding before a closing quote ("Basic dXNlcj=") is
        # the value. Nor a scheme whose value is a placeholder (Bearer <redacted>).
        # A "?" before another name= ends the value (a game server's command line:
        # ?ServerAdminPassword=abc?MaxPlayers=70), and so does a "&" (a query string's next
        # parameter, "&amp;" in HTML, a shell's "&&"); any other "&" is the value's own
        # (MAVEN_GPG_PASSPHRASE=TXB&93&ChTl.W).
        bare_run = (
            rf"(?:{_BARE_CHAR}{{1,{MAX_VALUE_CHARS}}}+|\?(?![A-Za-z_]\w{{0,39}}=)"
            r"|&(?!amp;|&|[A-Za-z_][\w.\-\[\]%]{0,63}=))"
        )
        bare = (
            rf"""(?![a-z][a-z_]{{1,39}}="|{_SCHEME_WORDS}\s|[\w.$\-]{{1,{MAX_VALUE_CHARS}}}\("""
            rf"""|[\w$]{{1,64}}(?:\.[\w$]{{1,64}}){{1,16}}\["""
            # a template's error message: POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?not set}
            r"""|\?[^}\r\n]{0,200}\}"""
            # a scheme before a placeholder: Authorization: KISI-LOGIN <hidden> (a scheme is
            # letters and dashes: "00000001 <A>" is a value and a note)
            r"""|[A-Za-z][A-Za-z\-]{0,39}[ \t]{1,3}<[A-Za-z_\-]{2,40}>"""
            # the next key of a spaced INI line, the value left empty: password =  tls = true
            # (after a space only: in "password=Ab3x = …" the value is right after "=")
            r"""|(?<=[ \t])[A-Za-z_][\w.\-]{0,39}[ \t]{1,3}=[ \t])"""
            rf"(?P<secret>{bare_run}(?:{bare_run}|{_INNER_BRACKET}){{0,{MAX_VALUE_CHARS}}})"
            r"(?!(?<=\$)\{)"
        )
    n = MAX_VALUE_CHARS
    # A whole-line value (a cookie header) is made of name=value pairs.
    next_field = "" if value_kind in ("line", "cookies") else _NEXT_FIELD
    # After a bare colon ("credentials: ...", "botocore.credentials:GET ...") prose is far more
    # common than a secret, so an unquoted value there must not be a plain word of up to 16
    # letters of any script or a lowercase identifier ("ERROR in credentials: payment_intent",
    # "Passwort: geändert"). A conditional on the separator keeps one copy of the value
    # grammar: compiling is half the work of two copies.
    # A logger's or component's name before its message: "auth: AUTH0_DOMAIN=acme.io",
    # "DEBUG in auth: form=ImmutableMultiDict(...)"; but a cookie header is name=value pairs
    # (Cookie: csrf_token=…, Set-Cookie: wordpress_logged_in_<hash>=…).
    message = "" if value_kind == "cookies" else r"|[A-Za-z][A-Za-z0-9]{0,30}_[\w.\-]{1,60}=(?!=)"
    if value_kind not in ("line", "cookies"):
        message += r"|[a-z][a-z_]{1,39}=(?!=)"
    prose_guard = (
        rf"(?(colon)(?!{_PLAIN_WORD}(?:{_END_OF_WORD}|$)"
        rf"|[\p{{Ll}}_]{{1,40}}(?:{_END_OF_WORD}|$)"
        + message
        # kubectl describe secret: "token:      953 bytes"
        + rf"|[0-9]{{1,9}} bytes(?:{_END_OF_WORD}|$)"
        # an HTTP status: "failed to fetch anonymous token: 401 Unauthorized"
        + r"|[1-5][0-9]{2} [A-Z][a-z]{2,}"
        # an error's name before its message: "Unable to read DB_PASSWORD: ParameterNotFound: …"
        + r"|[A-Za-z][A-Za-z.]{2,60}:(?:\s|$)))"
    )
    # A quoted value is matched as runs between escapes, not a character at a time. The runs
    # are possessive: a quoted string splits into runs and escapes one way only, and no run can
    # end where a closing quote could follow, so backing off inside one never finds a match.
    # A Python repr may put a prefix before the quote: {'password': b'hunter2'}.
    cookie_list = (
        rf'|\[\s{{0,3}}(?P<secret>"[^"\r\n]{{1,{n}}}"(?:\s{{0,3}},\s{{0,3}}"[^"\r\n]{{1,{n}}}"){{0,64}})\s{{0,3}}\]'
        if value_kind == "cookies"
        else ""
    )
    value = (
        # TOML's and Python's triple-quoted strings on one line (password = '''abc''')
        rf"(?:'''(?P<secret>[^'\r\n]{{1,{n}}})'''"
        rf'|"""(?P<secret>[^"\r\n]{{1,{n}}})"""'
        rf'|{_STRING_PREFIX}"{_SCHEMES}(?P<secret>(?:[^"\\\r\n]{{1,{n}}}+|\\.){{1,{n}}})"'
        rf"|{_STRING_PREFIX}'{_SCHEMES}(?P<secret>(?:[^'\\\r\n]{{1,{n}}}+|\\.){{1,{n}}})'"
        # Japanese quotes right after the name (仮パスワード「abc」を発行しました)
        rf"|(?<=[\u3000-\u30ff\u4e00-\u9fff])「(?P<secret>[^」\r\n]{{1,{n}}})」"
        # Rust's Debug of an Option: password: Some("abc"); an Erlang binary: <<"abc">>
        rf'|Some\("(?P<secret>(?:[^"\\\r\n]{{1,{n}}}+|\\.){{1,{n}}})"\)'
        rf'|<<"(?P<secret>(?:[^"\\\r\n]{{1,{n}}}+|\\.){{1,{n}}})">>'
        rf'|\\"{_SCHEMES}(?P<secret>(?:[^"\\\r\n]{{1,{n}}}+|\\[^"]){{1,{n}}})\\"'
        # JSON inside a JSON string inside another: \\\"password\\\":\\\"abc\\\"
        rf'|\\\\\\"{_SCHEMES}(?P<secret>(?:[^"\\\r\n]{{1,{n}}}+|\\[^"\\]){{1,{n}}})\\\\\\"'
        # A list of Set-Cookie headers, as Node's and Python's clients hold them:
        # {"set-cookie": ["sid=abc; Path=/", "csrf=def; Secure"]}
        + cookie_list
        # Go's http.Header / map dumps: Authorization:[Bearer abc] Cookie:[a=b; c=d]; not a
        # JSON list of messages (Laravel's errors: {"password": ["must be 8 characters"]})
        + rf"""|\[(?!["'][^"'\]]{{0,{n}}}\s){_SCHEMES}(?P<secret>[^\[\]\r\n]{{1,{n}}})\]"""
        # JSON escaped for HTML (&quot;password&quot;:&quot;abc&quot;)
        rf"|&quot;{_SCHEMES}(?P<secret>(?:[^&\r\n]|&(?!quot;)){{1,{n}}})&quot;"
        rf"|{next_field}{_YAML_TAG}(?:{_SCHEMES}{prose_guard}|{_ACCOUNT_SCHEME}){bare})"
    )
    # After the name: its closing quote and, as a subscript, a bracket (config['password'] = ...).
    # Or, in a name/value pair (see _NAME_FIELDS), the name's closing quote, a comma (a
    # semicolon in PowerShell's ParameterBinding trace: name="Secret"; value="…"), spaces or
    # a line break (an escaped one too), then the value field.
    # Fields such as CloudTrail's "type":"String" (or Azure app settings' "slotSetting": false,
    # UiPath Orchestrator's "CanBeDeleted":true,"ValueScope":"Global") may stand between the
    # two, and OTLP wraps the value in its type: {"key":"db.password","value":{"stringValue":
    # "..."}} (Go's SDK: {"Type":"STRING","Value":"..."}). Spring Boot Actuator's /env nests it
    # under the name: "DB_PASSWORD":{"value":"...","origin":...}, and Envoy its data sources:
    # "secret":{"inline_string":"..."}. Azure Key Vault's secrets put their tags between:
    # {"name": "db-password", "tags": {"owner": "ops"}, "value": "..."}.
    named_value = (
        r"""(?:\\?["'])?(?:\s{0,3}[,;]\s{0,3}|\s{1,8}|\\n\s{0,16}|\s{0,3}:\s{0,3}\{\s{0,3})"""
        r"""(?:"[A-Za-z_]{1,20}"\s{0,3}:\s{0,3}(?:"[^"\r\n]{0,40}"|true|false|null|-?[0-9]{1,20}"""
        r"""|\{[^{}\r\n]{0,200}\})"""
        r"""\s{0,3},\s{0,3}){0,4}(?:\\?["'])?"""
        r"""(?i:value|parameter_?value|inline_string|inline_bytes)(?:\\?["'])?\s{0,3}[:=]\s{0,3}"""
        r"""(?:\{\s{0,3}"(?:stringValue|string_value|bytesValue)"\s{0,3}:\s{0,3}"""
        r"""|\{\s{0,3}"Type"\s{0,3}:\s{0,3}"[A-Za-z]{1,20}"\s{0,3},\s{0,3}"Value"\s{0,3}:\s{0,3})?"""
    )
    # Around the separator: up to three spaces of any kind (a line break too, as YAML's
    # "password:\n  value"), or a run of spaces and tabs that aligns columns (Terraform plans,
    # aligned INI and properties files, pretty-printed JSON).
    space = rf"(?:[ \t]{{4,{_ALIGNMENT}}}+|\s{{0,3}})"
    # A name in a URL's user name (https://x-access-token:ghs_...@github.com, also encoded:
    # https://ana%40acme.com%2Ftoken:...@x.zendesk.com) is no key: the URL rule masks the
    # password alone. Looked at only where a colon would be the separator.
    url_user = r"(?<!://[A-Za-z0-9_.\-%]{1,120})"
    # The name's closing quote may be HTML-escaped (&quot;) and its bracket URL-encoded
    # (user%5Bpassword%5D=..., Rails params in an access log); = may be escaped as JSON
    # encoders that escape HTML write it (Gson: password\u003dabc).
    separator = (
        rf"""(?:{named_value}"""
        # PHP's print_r of an object names a property's visibility: [apiKey:protected] => abc
        rf"""|(?:\\{{0,3}}["']|&quot;)?(?::(?:protected|private|public)|:[\w\\]{{1,80}}:private)?"""
        rf"""(?:\]|%5[Dd])?{space}"""
        # LDIF's "::" before a base64 value (userPassword:: e1NTSEF9...)
        rf"""(?:=>|->|:=|::(?=[ \t])|=|\\u003[dD]|(?P<colon>(?=:){url_user}:(?!:)|\uff1a)){space}"""
        # Erlang terms: a tuple ({default_pass, <<"abc">>}, RabbitMQ's config) and a map
        # (#{<<"password">> => <<"abc">>}, EMQX's auth hooks)
        r"""|,[ \t]{0,3}(?=<<")|">>[ \t]{0,3}=>[ \t]{0,3}(?=<<")"""
        # A directive and its quoted value (Valve's rcon_password "abc", ipsec.secrets' PSK
        # "abc", Redis' requirepass "abc"): one token in quotes after spaces, with a digit or
        # a symbol in it. In prose the word names a resource: secret "db-creds" not found,
        # Secret 'DbPassword' retrieved, with secret "database/creds/app". The name may be
        # quoted too: buildkite-agent meta-data set "db-password" "abc". Not a shell
        # variable's name: in curl -H "Authorization: Bearer $TOKEN" 'https://…' the next
        # word is an argument.
        r"""|(?=["']?[ \t])(?<!\$\{?[\w.\-]{1,100})"""
        r"""(?:(?<=[\w.\-])["'])?[ \t]{1,3}(?=(?P<q>["'])(?![a-z0-9]+(?:[-./][a-z0-9]+)+(?P=q))"""
        r"""(?=[^\s"']{0,255}[0-9!#$%^&*+=~?@])[^\s"']{1,256}(?P=q)(?![^\s,;)\]}]))"""
        # A table's cells ("| password | abc |", psql, MySQL and Markdown tables), spaced:
        # guarded as after a colon (a plain word there is a header or a note).
        # Box-drawing tables too (│ NEXTAUTH_SECRET │ abc │), as CLIs print secrets listings.
        # The name is the row's first cell: nothing but it since the line's start or the last
        # bar (in "key-mgmt: wpa-psk | psk: abc" the bar ends a value, not a name's cell).
        rf"""|(?=[ \t]{{1,{_ALIGNMENT}}}[|\u2502\u2503])"""
        r"""(?<=(?:^|[|\u2502\u2503])[ \t]{0,40}[\w.\-"' ]{1,120})"""
        rf"""[ \t]{{1,{_ALIGNMENT}}}(?P<colon>[|\u2502\u2503])[ \t]{{1,{_ALIGNMENT}}}"""
        # A dot leader, with or without a colon after it ("Admin password ....... abc",
        # "Password.............: abc"), as installers and report tools align their output;
        # four dots at least: "Checking password... done" is a progress message.
        r"""|[ \t]{0,3}\.{4,60}(?:[ \t]{0,3}[:=])?[ \t]{1,3}"""
        # A multipart form field, its line breaks escaped in a one-line dump:
        # Content-Disposition: form-data; name="password"\r\n\r\nabc\r\n--boundary
        r"""|\\?"(?:\\r\\n){2}"""
        # Japanese quotes right after the name: パスワード「abc」
        r"""|(?=「[^」\r\n]{1,256}」))"""
    )
    # ["key", "value"] pairs, as Rails and other ORMs log bind parameters, and ('key', 'value')
    # tuples as Python's repr of a header list shows them, or of an ASGI scope's as bytes
    # ((b'x-api-key', b'...')); single quotes only: a SQL column list, ("password", "email"),
    # is no pair. The name must open the pair: in a list of strings ("password",
    # "client_credentials", "urn:...:device_code"]) the last two are no name and value.
    # Here and in the separators above, a branch that opens with a long lookbehind first looks
    # ahead at the character it needs: tried at every name that is no key ("password reset"),
    # the lookbehind alone scanned back up to 120 characters each time.
    pair = (
        r"""(?:(?=["'])(?<=\[\s{0,2}["'][^"'\[\]\r\n]{1,100})"""
        rf"""["']\s{{0,2}},\s{{0,2}}["'](?P<secret>[^"'\\\r\n]{{1,{n}}})["']"""
        # a third element, the value's type (TR-069's setParameterValues, as GenieACS logs it:
        # ["Device.ManagementServer.ConnectionRequestPassword","abc","xsd:string"])
        r"""(?:\s{0,2},\s{0,2}["'][\w:.\-]{1,40}["'])?\s{0,2}\]"""
        r"""|(?=')(?<=\(\s{0,2}[bB]?'[^'\(\)\r\n]{1,100})"""
        rf"""'\s{{0,2}},\s{{0,12}}(?:[bB]?'(?P<secret>[^'\\\r\n]{{1,{n}}})'"""
        # PHP's define('DB_PASSWORD', "abc"): the value in double quotes (after the comma, spaces
        # that align a column: WordPress's salts)
        rf"""|"(?P<secret>[^"\\\r\n]{{1,{n}}})")\s{{0,2}}\)"""
        # A header set by a call, in either quotes: setRequestHeader("X-Api-Key", "abc")
        # (JavaScript, VBA without the parentheses), Go's Header.Set, .NET's Headers.Add.
        rf"""|(?=["'][ \t]{{0,2}},)"""
        rf"""(?<=(?i:set_?request_?header|set_?header|add_?header|header\.set|header\.add"""
        rf"""|headers\.set|headers\.add|headers\.append)[ \t]{{0,2}}\(?[ \t]{{0,2}}"""
        rf"""(?P<hq>["'])[^"'\r\n]{{1,100}})(?P=hq)[ \t]{{0,2}},[ \t]{{0,2}}"""
        rf"""(?P<vq>["']){_SCHEMES}"""
        rf"""(?P<secret>(?:(?!(?P=vq))[^\\\r\n]){{1,{n}}})(?P=vq))"""
    )
    # PostgreSQL's constraint errors: DETAIL:  Key (api_key)=(abc123) already exists.
    pg_detail = rf"\)=\((?P<secret>[^()\r\n]{{1,{n}}})\)"
    # XML elements: <password>abc</password>, <ns:apiKey>abc</ns:apiKey>. The lookbehind
    # wants the whole start tag to be a name ("<span class=token>" is not one).
    # With attributes too: <wsse:Password Type="...#PasswordText">abc</wsse:Password>.
    # Or the value in a Value element of its own, as Windows' unattend.xml writes it:
    # <Password><Value>abc</Value><PlainText>true</PlainText></Password>.
    attribute = r"""\s{1,3}[\w:.\-]{1,40}=(?:\\?"[^"<>\r\n]{0,200}"|'[^'<>\r\n]{0,200}')"""
    xml = (
        rf"(?=[\s>])(?<=<[\w:.\-]{{1,100}})(?:{attribute}){{0,4}}>(?:<(?:[\w\-]{{1,20}}:)?Value>)?"
        rf"(?P<secret>[^<>\r\n]{{1,{n}}})</"
    )
    # The same escaped for HTML or XML (BizTalk's exported bindings hold their adapters' settings
    # so: &lt;Password vt="8"&gt;abc&lt;/Password&gt;).
    xml_escaped = (
        rf"(?=&gt;|\s)(?<=&lt;[\w:.\-]{{1,100}})(?:{attribute}){{0,4}}&gt;"
        rf"(?P<secret>(?:[^&<>\r\n]|&(?!lt;)){{1,{n}}})&lt;/"
    )
    # A property list's key and its string (macOS Wi-Fi and MDM profiles):
    # <key>Password</key><string>abc</string>.
    plist = (
        rf"(?=</key>)(?<=<key>[^<>\r\n]{{1,100}})</key>\s{{0,3}}<string>"
        rf"(?P<secret>[^<>\r\n]{{1,{n}}})</"
    )
    # A TR-069 (CWMP) parameter: <Name>…KeyPassphrase</Name><Value xsi:type="…">abc</Value>.
    cwmp = (
        rf"(?=</Name>)(?<=<Name>[^<>\r\n]{{1,256}})</Name>\s{{0,3}}<Value(?:{attribute}){{0,2}}>"
        rf"(?P<secret>[^<>\r\n]{{1,{n}}})</Value>"
    )
    # The name as an element's name attribute, the value its content (Hibernate and Spring
    # XML: <property name="hibernate.connection.password">abc</property>).
    xml_named = (
        rf"""(?=["'])(?<=\sname=(?P<nq>["'])[\w:.\-]{{0,100}})(?P=nq)(?:{attribute}){{0,4}}\s{{0,3}}>"""
        rf"(?P<secret>[^<>\r\n]{{1,{n}}})</"
    )
    # A query string or JSON URL-encoded inside another URL (OAuth redirects, logged request
    # URLs): client_secret%3Dabc%26..., %22token%22%3A%22abc%22. The value ends at an encoded
    # & " or , so the rest of the URL stays readable.
    url_encoded = (
        rf"(?:%22)?%3[DdAa](?:%22)?"
        rf"(?P<secret>(?:[^%\s\"'&,;<>\\]|%(?!2[26Cc])[0-9A-Fa-f]{{2}}){{1,{n}}})"
    )
    structured = f"{pair}|{pg_detail}|{xml}|{xml_escaped}|{xml_named}|{plist}|{cwmp}|{url_encoded}"
    return key + rf"(?:{structured}|{separator}{value})"


# The separator is part of a key-name trigger: "token" alone is common prose, "token=" is not.
# It holds all the pattern allows between a name and a value: a suffix (token_2, token_b64), a
# closing quote (&quot; too) and bracket (%5D too), up to three of the pattern's \s (up to nine
# bytes of _TRIGGER_SPACE) or a run of spaces and tabs that aligns columns, a separator (the
# full-width colon of CJK text too, and Gson's \u003d), a dot leader, a table's next cell, the
# end of an XML start tag, or a URL-encoded = or :.
_AFTER_NAME = _KEY_SUFFIX + (
    rf"""(?:(?:\\{{0,3}}["']?|&quot;)(?:\]|%5D)?{_TRIGGER_SPACE}{{0,{_ALIGNMENT}}}"""
    r"""(?:[:=]|->|\xef\xbc\x9a|\\u003D)"""
    rf"""|["']{_TRIGGER_SPACE}{{0,6}},|\)=\(|["']?>|&gt;|(?:%22)?%3[AD]|[\t ]{{0,3}}\.\.\.\."""
    # an Erlang tuple's binary value ({default_pass,<<"...">>})
    r'|,[\t ]{0,3}<<"'
    # a multipart form field's escaped blank line (name="password"\r\n\r\n...); a Japanese
    # opening quote (パスワード「...」)
    r"""|\\?"(?:\\r\\n){2}|\xe3\x80\x8c"""
    # a table's next cell (│ and ┃ of box-drawing tables too), or a directive's quoted value
    rf"""|[\t ]{{1,{_ALIGNMENT}}}(?:\||\xe2\x94[\x82\x83])[\t ]|["']?[\t ]{{1,3}}["'][^\s"']"""
    # a property list's key and its string (<key>Password</key><string>)
    rf"""|</key>{_TRIGGER_SPACE}{{0,9}}<string>"""
    # a TR-069 parameter's name and value (</Name><Value>)
    rf"""|</Name>{_TRIGGER_SPACE}{{0,9}}<Value"""
    # an XML start tag's attribute (<wsse:Password Type="...">)
    rf"""|[\t ]{{1,3}}[\w:.\-]{{1,40}}=["']"""
    rf"""|\\?["']?(?:{_TRIGGER_SPACE}|[,;]){{1,12}}\\?["']?(?:value|parameter_?value)"""
    # a name/value pair across an escaped line break: the value field may be far indented
    rf"""|\\?["']?(?:{_TRIGGER_SPACE}|,){{0,12}}\\n)"""
)
# Names this short (pw, pin, cvv, ssn) go to Hyperscan as an expression of their own: in one
# alternation with longer names they make its whole database scan about half as fast
# (measured: a clean 170-byte line 0.95 -> 0.53 us, a mostly clean log 240 -> 490 MB/s).
_SHORT_NAME = 3
# Longer names go in expressions of at most this many: one of 60+ names (keyname.password)
# scanned a line 1.4x as slowly as four of 16, and near Hyperscan's size limit.
_NAMES_PER_PART = 16


def _trigger_parts(short: list[str], longer: list[str]) -> tuple[str, ...]:
    """The trigger as Hyperscan gets it (Rule.trigger_parts), from the names' regexes: short
    names apart, the others in groups of _NAMES_PER_PART; () when that is the trigger itself."""
    groups = [longer[i : i + _NAMES_PER_PART] for i in range(0, len(longer), _NAMES_PER_PART)]
    if short:
        groups.append(short)
    return tuple(_name_trigger(g) for g in groups) if len(groups) > 1 else ()


def _name_trigger(name_regexes: list[str]) -> str:
    return "(?i)(?:" + "|".join(name_regexes) + ")" + _AFTER_NAME


# Set-Cookie attributes: their values are the server's settings, not the cookie.
_COOKIE_ATTRIBUTES = frozenset(
    [
        "expires",
        "max-age",
        "domain",
        "path",
        "secure",
        "httponly",
        "samesite",
        "partitioned",
        "priority",
        "version",
        "comment",
    ]
)
# Cookies that analytics and consent scripts set in the browser (Google Analytics and Ads,
# Meta, Microsoft Clarity and UET, Hotjar, Matomo, Segment, Amplitude, Mixpanel, Yandex,
# HubSpot, Marketo's Munchkin, Klaviyo;
# OneTrust, Cookiebot, IAB TCF and US privacy strings): visitor counters and consent choices
# that no server issues and no server accepts as a login, kept for debugging like the
# attributes; and what load balancers and PeopleSoft set beside the session (F5's
# BIGipServer<pool> and AWS ALB's stickiness, which pick a backend; PeopleSoft's expiry and
# last-site markers; CloudFront's Key-Pair-Id, which names the public key that checks its
# signed cookies). A session cookie under any other name is masked.
_ANALYTICS_COOKIE = re.compile(
    r"_ga(?:_\w+)?|_gid|_gat(?:_\w+)?|_gcl_\w+|_fb[pc]|_cl(?:ck|sk)|_hj\w+|_uet[sv]id"
    r"|__utm[abcztv]|ajs_(?:anonymous|user)_id|_pk_(?:id|ses)[\w.]*|amplitude_id\w*|_ym_\w+"
    r"|mp_\w+_mixpanel|OptanonConsent|OptanonAlertBoxClosed|CookieConsent|euconsent(?:-v2)?"
    r"|usprivacy|_shopify_(?:y|s|sa_t|sa_p|m|tm|tw|evids)"
    r"|__hs(?:tc|sc|src)|hubspotutk|_mkto_trk|__kla_id"
    r"|BIGipServer[\w~.\-]*|AWSALB(?:CORS|TG|TGCORS)?|PS_TOKENEXPIRE|PS_LASTSITE|PS_DEVICEFEATURES"
    r"|CloudFront-Key-Pair-Id"
)
# Between a header's pairs: "; ", and ", " before the next cookie of Set-Cookie headers joined
# into one line (not the ", " inside an Expires date: "Thu, 01 Jan 1970"), and the next
# Set-Cookie header itself where a dump joins them (curl -v's "…; HttpOnly\t< set-cookie: …").
_COOKIE_SEPARATOR = re.compile(
    r";(?:\s|%20)*|,\s*(?=[^\s=;,]+=)|\s+<?\s*(?i:set-cookie|cookie)\s{0,3}:\s*"
)
# A preference, not a credential: a word or a locale (theme=dark, lang=en-US), a small number
# or a flag (consent=1), a node's name (Tomcat's route=node2), a time zone (tz=Europe%2FAmsterdam).
_SETTING = re.compile(
    r"[A-Za-z]{1,16}(?:[-_][A-Za-z0-9]{1,8})?|[0-9]{1,10}|[A-Za-z]{1,10}[0-9]{1,2}"
    r"|[A-Z][a-z]{2,12}(?:(?:/|%2[Ff])[A-Z][A-Za-z_\-]{1,30}){1,2}"
    r"|[A-Za-z][\w\-]{0,30}=[\w\-]{1,16}"  # a nested setting: sap-usercontext=sap-client=100
)


# What other tools print in place of a value they masked.
_MASK_GLYPHS = frozenset("\u2588\u2592\u2591*\u2022\u25cfxX")


def cookie_values(header: str) -> list[tuple[int, int]]:
    """Where the values are in a Cookie or Set-Cookie header's value: each name=value pair's
    value (without quotes), or a lone value; not Set-Cookie's attributes, not empty values (a
    cookie being cleared), not settings (theme=dark, lang=en-US, consent=1). Names and
    attributes stay readable, which is what debugging a session needs; any other value is
    masked, since any cookie may be the session, whatever its name."""
    spans: list[tuple[int, int]] = []
    start = 0
    # A header dump joined with " | " (OkHttp's, say) goes on with the next header there, and
    # a message after a dash is no cookie ("HttpOnly — session created for …").
    ends = [i for i in (header.find(" | "), header.find(" \u2014 ")) if i >= 0]
    limit = min(ends, default=len(header))
    for separator in [*_COOKIE_SEPARATOR.finditer(header, 0, limit), None]:
        end = limit if separator is None else separator.start()
        part = header[start:end]
        equals = part.find("=")
        if equals >= 0:
            name = part[:equals].strip().strip('"')
            if part[equals - 1 : equals].isspace() or any(c.isspace() for c in name):
                equals = -1  # "abc =", "abc rv=": no pair (a name is a token), the value alone
        if equals >= 0:
            value_start = start + equals + 1
        else:
            name = part.strip().strip('"')
            value_start = start
            words = name.split(None, 1)
            if len(words) == 2 and words[0].lower() in _COOKIE_ATTRIBUTES:
                break  # an attribute, and then the log line goes on: "Secure req=…"
        if name.lower() not in _COOKIE_ATTRIBUTES and not _ANALYTICS_COOKIE.fullmatch(name):
            value = header[value_start:end]
            stripped = value.strip().strip('"')
            # a lone value is the cookie itself, whatever it looks like, unless it is another
            # tool's mask (OkHttp's ██)
            if (
                stripped
                and (equals < 0 or not _SETTING.fullmatch(stripped))
                and not set(stripped) <= _MASK_GLYPHS
            ):
                offset = value_start + value.index(stripped)
                spans.append((offset, offset + len(stripped)))
        if separator is not None:
            start = separator.end()
    return spans


# Value kinds (KeyNameRule.value) whose value holds several values: where those are, which
# are masked apart (Rule.mask_spans in text, the same in dicts).
VALUE_SPANS: dict[str, Callable[[str], list[tuple[int, int]]]] = {"cookies": cookie_values}


def _text_rule(rule: KeyNameRule) -> Rule:
    names = [(n, _name_regex(n)) for n in rule.names + rule.exact_names]
    regexes = [r for _, r in names]
    short = [r for n, r in names if n.isascii() and len(n) <= _SHORT_NAME]
    longer = [r for n, r in names if not (n.isascii() and len(n) <= _SHORT_NAME)]
    return Rule(
        id=rule.id,
        pack=rule.pack,
        category=rule.category,
        label=rule.label,
        trigger=_name_trigger(regexes),
        trigger_parts=_trigger_parts(short, longer),
        # Every match starts at a name (see above).
        anchor="(?i)(?:" + "|".join(regexes) + ")",
        search_anchor=True,
        pattern_source=pattern_source(rule),
        pattern_flags=0,  # case-insensitive where it matters, in the pattern (see _SCHEMES)
        validator_name=rule.validator_name or "not_placeholder_like",
        validator=rule.validator or not_placeholder_like,
        mask=rule.mask,
        mask_spans=VALUE_SPANS.get(rule.value),
        priority=40,
        guarded=False,  # generated here, not written by a user: bounded and linear by construction
        must_match=rule.must_match,
        must_not_match=rule.must_not_match,
    )
