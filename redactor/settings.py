"""Settings, resolved once: argument → ``REDACTOR_*`` environment variable → config file → default.

The result is a frozen :class:`Settings`; nothing reads the environment after resolution, so
there is no global mutable configuration to cache-bust. Security settings (the ref key) fail
rather than fall back when a production config file is in use.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from redactor.engine.interface import ConfigError
from redactor.engine.rules import SHIPPED_RULES_DIR

DEFAULT_RULES_DIR = SHIPPED_RULES_DIR
DEFAULT_VAULT_TTL_S = 3600
DEFAULT_MAX_VALUE_BYTES = 16 * 1024 * 1024
REF_KEY_BYTES = 32


def default_home() -> Path:
    """The per-user state directory: ``$REDACTOR_HOME``, else ``$XDG_STATE_HOME/redactor``."""
    if env := os.environ.get("REDACTOR_HOME"):
        return Path(env).expanduser()
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "redactor"


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything redactor needs to know, fixed at start-up."""

    home: Path
    rules_dir: Path = DEFAULT_RULES_DIR
    extra_rules_dirs: tuple[Path, ...] = ()
    enabled_packs: frozenset[str] = frozenset()  # off-by-default packs switched on (e.g. "pii")
    disabled_packs: frozenset[str] = frozenset()
    ref_key: bytes = field(default=b"", repr=False)
    vault_url: str | None = None
    vault_ttl_s: int = DEFAULT_VAULT_TTL_S
    max_value_bytes: int = DEFAULT_MAX_VALUE_BYTES
    config_file: Path | None = None

    @property
    def keys_dir(self) -> Path:
        return self.home / "keys"

    @property
    def default_vault_url(self) -> str:
        return f"sqlite:///{self.home / 'vault.db'}"

    def with_overrides(self, **changes: Any) -> Settings:
        return replace(self, **changes)


def _split(value: str | list[str] | None) -> frozenset[str]:
    if value is None:
        return frozenset()
    items = value.split(",") if isinstance(value, str) else value
    return frozenset(item.strip() for item in items if item.strip())


def _decode_key(text: str, where: str) -> bytes:
    text = text.strip()
    try:
        key = bytes.fromhex(text)
    except ValueError:
        import base64

        try:
            key = base64.b64decode(text, validate=True)
        except ValueError:
            raise ConfigError(f"{where}: ref key must be hex or base64") from None
    if len(key) < 16:
        raise ConfigError(f"{where}: ref key must be at least 16 bytes, got {len(key)}")
    return key


def load_or_create_ref_key(keys_dir: Path) -> bytes:
    """Read ``keys_dir/ref.key``, creating it (mode 0600) on first use."""
    path = keys_dir / "ref.key"
    if path.exists():
        return _decode_key(path.read_text(), str(path))
    keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(REF_KEY_BYTES)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key.hex() + "\n")
    return key


def resolve_settings(
    *,
    config_file: str | os.PathLike[str] | None = None,
    environ: Mapping[str, str] | None = None,
    **arguments: Any,
) -> Settings:
    """Build :class:`Settings` from explicit arguments, the environment and an optional TOML file.

    Arguments win over ``REDACTOR_*`` variables, which win over the file, which wins over
    defaults. With a config file in use the ref key must be configured explicitly
    (``ref_key`` / ``ref_key_file`` / ``REDACTOR_REF_KEY``); without one, the key under
    ``$REDACTOR_HOME/keys/ref.key`` is used and created on first use.
    """
    env = os.environ if environ is None else environ
    config_path = config_file or env.get("REDACTOR_CONFIG")
    file_values: dict[str, Any] = {}
    if config_path:
        path = Path(config_path)
        import tomllib  # only with a config file: the parser costs start-up time

        try:
            file_values = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file not found: {path}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{path}: invalid TOML: {exc}") from None
        file_values = file_values.get("redactor", file_values)

    def pick(name: str, env_name: str) -> Any:
        if arguments.get(name) is not None:
            return arguments[name]
        if env_name in env and env[env_name] != "":
            return env[env_name]
        return file_values.get(name)

    home_value = pick("home", "REDACTOR_HOME")
    home = Path(home_value).expanduser() if home_value else default_home()
    rules_value = pick("rules_dir", "REDACTOR_RULES")
    rules_dir = Path(rules_value) if rules_value else DEFAULT_RULES_DIR
    if not rules_dir.is_dir():
        raise ConfigError(f"rules directory not found: {rules_dir}")
    extra = tuple(
        Path(p)
        for p in (arguments.get("extra_rules_dirs") or file_values.get("extra_rules_dirs") or ())
    )

    ttl = int(pick("vault_ttl_s", "REDACTOR_VAULT_TTL_S") or DEFAULT_VAULT_TTL_S)
    if ttl <= 0:
        raise ConfigError(f"vault_ttl_s must be positive, got {ttl}")
    max_bytes = int(pick("max_value_bytes", "REDACTOR_MAX_VALUE_BYTES") or DEFAULT_MAX_VALUE_BYTES)
    if max_bytes <= 0:
        raise ConfigError(f"max_value_bytes must be positive, got {max_bytes}")

    key_value = pick("ref_key", "REDACTOR_REF_KEY")
    key_file = pick("ref_key_file", "REDACTOR_REF_KEY_FILE")
    if isinstance(key_value, bytes):
        ref_key = key_value
    elif key_value:
        ref_key = _decode_key(str(key_value), "ref_key")
    elif key_file:
        try:
            ref_key = _decode_key(Path(key_file).read_text(), str(key_file))
        except FileNotFoundError:
            raise ConfigError(f"ref key file not found: {key_file}") from None
    elif config_path:
        raise ConfigError(
            f"{config_path}: no ref key configured; set ref_key_file (or REDACTOR_REF_KEY). "
            "Refs must be keyed, so production configs never fall back to a generated key."
        )
    else:
        ref_key = load_or_create_ref_key(home / "keys")

    return Settings(
        home=home,
        rules_dir=rules_dir,
        extra_rules_dirs=extra,
        enabled_packs=_split(pick("enable", "REDACTOR_ENABLE")),
        disabled_packs=_split(pick("disable", "REDACTOR_DISABLE")),
        ref_key=ref_key,
        vault_url=pick("vault_url", "REDACTOR_VAULT"),
        vault_ttl_s=ttl,
        max_value_bytes=max_bytes,
        config_file=Path(config_path) if config_path else None,
    )
