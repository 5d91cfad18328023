"""Rules are data: every shipped example holds under both scanners, and a malformed pack is
refused at load time with a :class:`RuleError` that names the file."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from redactor import RuleError, create_redactor, load_ruleset
from redactor.engine.selftest import check_all
from redactor.settings import DEFAULT_RULES_DIR, Settings, resolve_settings

from _engine_helpers import REF_KEY, SCANNERS

GOOD_RULE = """
[[rules]]
id = "test.widget"
category = "secret"
label = "widget"
trigger = 'wdg_'
pattern = '''(?P<secret>wdg_[a-z0-9]{8})'''
must_match = [{ text = "key wdg_a1b2c3d4 here", secret = "wdg_a1b2c3d4" }]
must_not_match = ["wdg_short"]
"""


def write_pack(directory: Path, name: str, body: str, header: bool = True) -> Path:
    path = directory / f"{name}.toml"
    head = f'[pack]\nname = "{name}"\ncategory = "secret"\n' if header else ""
    path.write_text(head + body, encoding="utf-8")
    return path


@pytest.mark.parametrize("scanner", SCANNERS)
def test_every_shipped_example_holds(settings: Settings, scanner: str) -> None:
    redactor = create_redactor(
        settings.with_overrides(enabled_packs=frozenset(_off_by_default_packs())), scanner=scanner
    )
    checked, failures = check_all(redactor)
    assert checked > 100, f"only {checked} examples checked: are the packs loaded?"
    assert redactor.scanner.name == scanner
    # ExampleFailure.__str__ names the rule and the example's index, never its text.
    assert not failures, f"{len(failures)} failing examples under {scanner}:\n" + "\n".join(
        map(str, failures)
    )


def _off_by_default_packs() -> list[str]:
    from redactor.engine.rules import load_pack

    return [
        load_pack(p)[0].name
        for p in sorted(DEFAULT_RULES_DIR.glob("*.toml"))
        if not load_pack(p)[0].enabled_by_default
    ]


def test_every_rule_has_examples(settings: Settings) -> None:
    redactor = create_redactor(
        settings.with_overrides(enabled_packs=frozenset(_off_by_default_packs()))
    )
    missing = [r.id for r in redactor.rules if not r.must_match]
    assert not missing, f"rules without must_match examples: {missing}"


def test_a_good_custom_pack_loads_and_masks(tmp_path: Path, settings: Settings) -> None:
    rules = tmp_path / "rules"
    rules.mkdir()
    write_pack(rules, "widgets", GOOD_RULE)
    redactor = create_redactor(settings.with_overrides(rules_dir=rules))
    assert [r.id for r in redactor.rules] == ["test.widget"]
    assert check_all(redactor) == (2, [])
    out = redactor.redact("got wdg_zz99yy88 ok")
    assert out.startswith("got [widget#") and out.endswith("] ok"), out


BAD_PACKS = {
    "bad_toml": ('[[rules]\nid = "x"', "invalid TOML"),
    "unknown_validator": (
        GOOD_RULE.replace("pattern =", 'validator = "crc64"\npattern ='),
        "unknown validator",
    ),
    "unknown_field": (GOOD_RULE.replace("pattern =", 'colour = "red"\npattern ='), "unknown field"),
    "bad_anchor": (
        GOOD_RULE.replace("pattern =", "anchor = 'wdg_('\npattern ="),
        "anchor does not",
    ),
    # an unbounded run that "wdg_" fits in: quadratic on a long line without Hyperscan
    "quadratic_trigger": (
        GOOD_RULE.replace("trigger = 'wdg_'", "trigger = 'wdg_[^\\r\\n]*;'"),
        "unbounded run",
    ),
    "bad_label": (
        GOOD_RULE.replace('label = "widget"', 'label = "Widget Key"'),
        "label must match",
    ),
    "bad_pattern": (
        GOOD_RULE.replace("(?P<secret>wdg_[a-z0-9]{8})", "(?P<secret>wdg_[a-z0-9]{8}"),
        "pattern does not compile",
    ),
    "bad_trigger": (
        GOOD_RULE.replace("trigger = 'wdg_'", "trigger = 'wdg_('"),
        "trigger does not compile",
    ),
    "bad_category": (
        GOOD_RULE.replace('category = "secret"', 'category = "stuff"'),
        "category must be one of",
    ),
    "anchor_tail_without_anchor": (
        GOOD_RULE.replace("pattern =", "anchor_tail = 3\npattern ="),
        "'anchor_tail' must be",
    ),
    "negative_anchor_tail": (
        GOOD_RULE.replace("pattern =", "anchor = 'wdg_'\nanchor_tail = -1\npattern ="),
        "'anchor_tail' must be",
    ),
    "bad_mask": (GOOD_RULE.replace("pattern =", 'mask = "rot13"\npattern ='), "unknown mask"),
    "bad_id": (GOOD_RULE.replace('id = "test.widget"', 'id = "Test Widget!"'), "invalid rule id"),
    "missing_pattern": (
        "\n".join(ln for ln in GOOD_RULE.splitlines() if not ln.startswith("pattern")),
        "'pattern' must be",
    ),
    "example_secret_not_in_text": (
        GOOD_RULE.replace('secret = "wdg_a1b2c3d4"', 'secret = "wdg_other000"'),
        "substring",
    ),
    "bad_keyname": (
        '[[keynames]]\nid = "keyname.x"\nlabel = "x"\nnames = ["pass  word"]\n',
        "key name",
    ),
    "keyname_without_names": ('[[keynames]]\nid = "keyname.x"\nlabel = "x"\n', "needs 'names'"),
    "keyname_bad_value": (
        '[[keynames]]\nid = "keyname.x"\nlabel = "x"\nnames = ["pin"]\nvalue = "all"\n',
        "'value' must be",
    ),
    "keyname_not_name_of_no_name": (
        '[[keynames]]\nid = "keyname.x"\nlabel = "x"\nnames = ["token"]\n'
        'not_names = ["next_cursor"]\n',
        "ends in none of the names",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_PACKS))
def test_malformed_pack_is_refused_naming_the_file(tmp_path: Path, case: str) -> None:
    body, message = BAD_PACKS[case]
    write_pack(tmp_path, f"pack_{case}", body)
    with pytest.raises(RuleError) as info:
        load_ruleset([tmp_path])
    text = str(info.value)
    assert f"pack_{case}.toml" in text, text
    assert message in text, text


def test_a_pack_that_is_not_utf8_is_refused_naming_the_file(tmp_path: Path) -> None:
    (tmp_path / "latin1.toml").write_bytes(GOOD_RULE.encode() + b"\n# caf\xe9\n")
    with pytest.raises(RuleError, match=r"latin1\.toml: not UTF-8 text"):
        load_ruleset([tmp_path])


def test_malformed_pack_fails_create_redactor(tmp_path: Path) -> None:
    write_pack(tmp_path, "broken", BAD_PACKS["bad_pattern"][0])
    settings = resolve_settings(home=tmp_path, rules_dir=tmp_path, ref_key=REF_KEY, environ={})
    with pytest.raises(RuleError, match="broken.toml"):
        create_redactor(settings)


def test_duplicate_rule_id_across_files(tmp_path: Path) -> None:
    write_pack(tmp_path, "a_first", GOOD_RULE)
    write_pack(tmp_path, "b_second", GOOD_RULE)
    with pytest.raises(RuleError) as info:
        load_ruleset([tmp_path])
    text = str(info.value)
    assert "b_second.toml" in text and "test.widget" in text and "a_first.toml" in text, text


def test_duplicate_rule_id_clashing_with_shipped_pack(tmp_path: Path) -> None:
    write_pack(tmp_path, "mine", GOOD_RULE.replace('id = "test.widget"', 'id = "card.pan"'))
    with pytest.raises(RuleError, match="card.pan"):
        load_ruleset([DEFAULT_RULES_DIR, tmp_path])


def test_duplicate_rule_id_in_one_file(tmp_path: Path) -> None:
    write_pack(tmp_path, "twice", GOOD_RULE + GOOD_RULE)
    with pytest.raises(RuleError, match="twice.toml"):
        load_ruleset([tmp_path])


def test_empty_rules_dir_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(RuleError, match="no rule packs"):
        load_ruleset([tmp_path])


def test_enabling_an_unknown_pack_is_an_error(settings: Settings) -> None:
    with pytest.raises(RuleError) as info:
        create_redactor(settings.with_overrides(enabled_packs=frozenset({"no_such_pack"})))
    assert "no_such_pack" in str(info.value)
    with pytest.raises(RuleError, match="no_such_pack"):
        load_ruleset([DEFAULT_RULES_DIR], disabled=["no_such_pack"])


def test_pack_switches(tmp_path: Path) -> None:
    write_pack(tmp_path, "widgets", GOOD_RULE)
    off = GOOD_RULE.replace("test.widget", "test.gadget").replace("wdg_", "gdg_")
    (tmp_path / "gadgets.toml").write_text(
        '[pack]\nname = "gadgets"\nenabled_by_default = false\n' + off
    )
    ids = lambda rs: sorted(r.id for r in rs.rules)  # noqa: E731
    assert ids(load_ruleset([tmp_path])) == ["test.widget"]
    assert ids(load_ruleset([tmp_path], enabled=["gadgets"])) == ["test.gadget", "test.widget"]
    assert ids(load_ruleset([tmp_path], enabled=["gadgets"], disabled=["widgets"])) == [
        "test.gadget"
    ]
    assert [p.name for p in load_ruleset([tmp_path], disabled=["widgets"]).packs] == []


def test_shipped_packs_copied_elsewhere_still_load(tmp_path: Path) -> None:
    for path in DEFAULT_RULES_DIR.glob("*.toml"):
        shutil.copy(path, tmp_path)
    assert load_ruleset([tmp_path]).rules
