"""Key files, ``redactor keys``, ``open_writer``/``open_reader`` and the blob format."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redactor.cli import main
from redactor.engine.interface import ConfigError
from redactor.settings import Settings
from redactor.vault import open_reader, open_writer
from redactor.vault.interface import SealError, VaultConfigError
from redactor.vault.keys import (
    KeyRing,
    generate_keys,
    list_keys,
    load_keyring,
    load_public_key,
    retire_key,
)
from redactor.vault.sealing import BatchSealer, Unsealer
from tests.vault._vault_helpers import card_number, make_finding, new_trace


def test_generate_writes_a_key_set_with_safe_modes(tmp_path: Path) -> None:
    keys = tmp_path / "keys"
    kid = generate_keys(keys)
    assert (keys / "current").read_text().strip() == kid
    assert stat.S_IMODE((keys / f"vault-{kid}.key").stat().st_mode) == 0o600
    assert stat.S_IMODE(keys.stat().st_mode) == 0o700
    assert load_public_key(keys).kid == kid
    assert load_keyring(keys).kids == {kid}
    assert list_keys(keys) == [(kid, True, True)]


def test_cli_keys_generate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDACTOR_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("REDACTOR_CONFIG", raising=False)
    assert main(["keys", "generate"]) == 0
    keys = tmp_path / "home" / "keys"
    kid = load_public_key(keys).kid
    assert (keys / "ref.key").exists() and kid in capsys.readouterr().out

    other = tmp_path / "elsewhere"
    assert main(["keys", "generate", "--dir", str(other)]) == 0
    assert (other / "ref.key").exists() and load_public_key(other).kid != kid
    assert load_public_key(keys).kid == kid  # the default set is untouched

    assert main(["keys", "generate", "--dir", str(other)]) == 0  # rotation
    assert len(load_keyring(other)) == 2
    assert (
        main(["keys", "retire", "--dir", str(other), load_public_key(other).kid]) == 2
    )  # current: refused
    assert main(["keys", "list", "--dir", str(other)]) == 0


def test_private_key_readable_by_others_is_refused(keys_dir: Path) -> None:
    (key_file,) = keys_dir.glob("vault-*.key")
    os.chmod(key_file, 0o644)
    with pytest.raises(VaultConfigError, match="chmod 600"):
        load_keyring(keys_dir)


def test_public_key_under_the_wrong_id_is_refused(keys_dir: Path) -> None:
    kid = load_public_key(keys_dir).kid
    imposter = generate_keys(keys_dir / "other")
    (keys_dir / f"vault-{kid}.pub").write_bytes(
        (keys_dir / "other" / f"vault-{imposter}.pub").read_bytes()
    )
    with pytest.raises(VaultConfigError):
        load_public_key(keys_dir)


def test_missing_current_pointer_is_an_error_not_a_guess(keys_dir: Path) -> None:
    (keys_dir / "current").unlink()
    with pytest.raises(VaultConfigError):
        load_public_key(keys_dir)


def test_retire_refuses_unknown_and_current(keys_dir: Path) -> None:
    with pytest.raises(VaultConfigError):
        retire_key(keys_dir, load_public_key(keys_dir).kid)
    with pytest.raises(VaultConfigError):
        retire_key(keys_dir, "zzzzzzzz")


def test_open_writer_without_url_or_keys_is_none(tmp_path: Path) -> None:
    assert open_writer(Settings(home=tmp_path)) is None


def test_open_writer_defaults_to_embedded_sqlite_when_keys_exist(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path, vault_ttl_s=120)
    generate_keys(settings.keys_dir)
    writer = open_writer(settings)
    assert writer is not None
    trace = new_trace()
    secret = card_number()
    writer.submit(trace, "app", "line", (make_finding(trace, secret),))
    assert writer.shutdown()
    assert (tmp_path / "vault.db").exists()
    assert stat.S_IMODE((tmp_path / "vault.db").stat().st_mode) == 0o600
    with open_reader(settings) as reader:
        (record,) = reader.records_for_trace(trace)
        assert record.originals[0].original == secret


def test_open_writer_with_url_but_no_key_fails(tmp_path: Path) -> None:
    with pytest.raises(VaultConfigError):
        open_writer(Settings(home=tmp_path), url="memory://")
    with pytest.raises(ConfigError):  # VaultConfigError is also a ConfigError
        open_reader(Settings(home=tmp_path), url="memory://")


@pytest.mark.parametrize("url", ["nonsense", "ftp://x", "sqlite://", "redis://"])
def test_bad_urls_fail_early(tmp_path: Path, url: str) -> None:
    settings = Settings(home=tmp_path)
    generate_keys(settings.keys_dir)
    with pytest.raises(VaultConfigError):
        open_writer(settings, url=url)


def _sealed(
    ring_dir: Path, payload: bytes, trace: str | None = "t", refs: tuple[str, ...] = ("r",)
) -> bytes:
    return BatchSealer(load_public_key(ring_dir)).seal(
        trace_id=trace, entry_id="e1", refs=refs, expires_at=2e9, count=1, payload=payload
    )


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=2048), trace=st.one_of(st.none(), st.text(max_size=40)))
def test_seal_open_round_trip(
    tmp_path_factory: pytest.TempPathFactory, payload: bytes, trace: str | None
) -> None:
    keys = tmp_path_factory.getbasetemp() / "hyp-keys"
    if not keys.exists():
        generate_keys(keys)
    header, opened = Unsealer(load_keyring(keys)).open(_sealed(keys, payload, trace))
    assert opened == payload and header.trace_id == trace and header.refs == ("r",)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0), bit=st.integers(min_value=0, max_value=7))
def test_any_flipped_bit_fails_to_open(
    tmp_path_factory: pytest.TempPathFactory, position: int, bit: int
) -> None:
    keys = tmp_path_factory.getbasetemp() / "hyp-keys-2"
    if not keys.exists():
        generate_keys(keys)
    blob = bytearray(_sealed(keys, b"secret payload"))
    blob[position % len(blob)] ^= 1 << bit
    with pytest.raises(SealError):
        Unsealer(load_keyring(keys)).open(bytes(blob))


def test_keyring_repr_shows_ids_only(keys_dir: Path) -> None:
    ring = load_keyring(keys_dir)
    assert repr(ring) == f"KeyRing(kids={sorted(ring.kids)})"
    assert "PRIVATE" not in repr(ring) and isinstance(ring, KeyRing)
