"""The TOML configuration file, turned into typed settings.

Errors name the file, the line and the key, and say what was expected. Secrets are never read at
load time: a `Secret` resolves its `*_cmd` / `*_env` / inline value when a channel needs it, so a
password never sits in a settings object that might be logged.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the package requires 3.11, tomli keeps older interpreters honest
    import tomli as tomllib

import platformdirs

from console.channels import catalog
from console.csat import CsatSettings
from console.csat import parse_settings as parse_csat
from console.hours import BusinessHours, local_zone_name
from console.hours import parse_settings as parse_business_hours
from console.notify import NotificationSettings
from console.notify import parse_settings as parse_notifications
from console.rules.model import Rule, parse_rules
from console.sla import SlaPolicy, default_policy, parse_policies
from console.outreach.settings import OutreachSettings
from console.outreach.settings import from_table as outreach_from_table

APP_NAME = "console"
KINDS = tuple(kind.id for kind in catalog.account_kinds())


class ConfigError(Exception):
    """A problem in the configuration file, phrased for the person who has to fix it."""

    def __init__(self, message: str, path: Path | None = None, line: int | None = None, key: str = ""):
        self.path, self.line, self.key, self.detail = path, line, key, message
        where = str(path) if path else "config"
        if line:
            where += f", line {line}"
        if key:
            where += f", key '{key}'"
        super().__init__(f"{where}: {message}")


def default_config_path() -> Path:
    env = os.environ.get("CONSOLE_CONFIG")
    if env:
        return Path(env).expanduser()
    return Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml"


def default_data_dir(workspace: str = "default") -> Path:
    return Path(platformdirs.user_data_dir(APP_NAME)) / workspace


class _Locator:
    """Finds the line of a key in the TOML source, for error messages.

    tomllib gives values without positions; this scans the text the same way a person would:
    the Nth `[[accounts]]` header, then the first `key =` line after it.
    """

    def __init__(self, text: str):
        self.lines = text.splitlines()

    def line_of(self, table: str, key: str | None = None, index: int | None = None) -> int | None:
        start, seen = 0, -1
        header = re.compile(r"^\s*\[\[\s*" + re.escape(table) + r"\s*\]\]" if index is not None
                            else r"^\s*\[\s*" + re.escape(table) + r"\s*\]")
        found = table == ""
        for number, line in enumerate(self.lines):
            if not found and header.match(line):
                seen += 1
                if index is None or seen == index:
                    start, found = number, True
                    if key is None:
                        return number + 1
                    continue
            if found and number > start and re.match(r"^\s*\[", line) and table:
                break
            if found and key is not None and re.match(r"^\s*\"?" + re.escape(key) + r"\"?\s*=", line):
                return number + 1
        return start + 1 if found and table else None


@dataclass
class Secret:
    """A secret named in the config by `<name>_cmd`, `<name>_env` or inline `<name>`.

    `get()` resolves it at the moment of use; `repr` never shows the value.
    """

    source: str  # "cmd", "env" or "inline"
    spec: str
    key: str
    path: Path | None = None  # where it is configured, for errors
    line: int | None = None

    def _error(self, message: str) -> ConfigError:
        return ConfigError(message, self.path, self.line, self.key)

    def get(self) -> str:
        if self.source == "inline":
            return self.spec
        if self.source == "env":
            value = os.environ.get(self.spec)
            if value is None:
                raise self._error(f"environment variable {self.spec} is not set")
            if not value:
                raise self._error(f"environment variable {self.spec} is empty")
            return value
        try:
            done = subprocess.run(shlex.split(self.spec), capture_output=True, timeout=30, check=False)
        except FileNotFoundError:
            raise self._error(f"the command {shlex.split(self.spec)[0]!r} is not installed or not on PATH") from None
        except (OSError, subprocess.TimeoutExpired, ValueError) as exc:
            raise self._error(f"could not run the command ({type(exc).__name__})") from None
        if done.returncode != 0:
            raise self._error(f"the command exited with status {done.returncode}")
        value = done.stdout.decode("utf-8", "replace").rstrip("\r\n")
        if not value:
            raise self._error("the command printed nothing; it should print the secret on its first line")
        return value

    def __repr__(self) -> str:
        return f"Secret({self.source}:{self.key})"


@dataclass
class AccountConfig:
    """One `[[accounts]]` table. Channel modules read their keys through the typed getters,
    which raise a ConfigError that points at the right line."""

    name: str
    kind: str
    raw: dict[str, Any]
    index: int
    path: Path | None = None
    _locator: _Locator | None = field(default=None, repr=False)
    workspace: "WorkspaceConfig | None" = field(default=None, repr=False)
    used: set[str] = field(default_factory=lambda: {"kind", "name", "enabled"})

    def error(self, key: str, message: str) -> ConfigError:
        line = self._locator.line_of("accounts", key, self.index) if self._locator else None
        return ConfigError(message, self.path, line, f"accounts[{self.index}].{key}" if key else "")

    def _get(self, key: str, types: tuple[type, ...], expected: str, default: Any, required: bool) -> Any:
        self.used.add(key)
        if key not in self.raw:
            if required:
                raise self.error(key, f"missing; expected {expected} (account '{self.name}')")
            return default
        value = self.raw[key]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise self.error(key, f"expected {expected}, got {type(value).__name__} {value!r}")
        return value

    def str(self, key: str, default: str | None = None, required: bool = False) -> str | None:
        value = self._get(key, (str,), "a string", default, required)
        if required and isinstance(value, str) and not value.strip():
            raise self.error(key, "must not be empty")
        return value

    def int(self, key: str, default: int | None = None, minimum: int | None = None,
            maximum: int | None = None, required: bool = False) -> int | None:
        value = self._get(key, (int,), "a whole number", default, required)
        if value is not None and ((minimum is not None and value < minimum) or (maximum is not None and value > maximum)):
            raise self.error(key, f"must be between {minimum} and {maximum}, got {value}")
        return value

    def float(self, key: str, default: float | None = None, minimum: float = 0.0, required: bool = False) -> float | None:
        value = self._get(key, (int, float), "a number", default, required)
        if value is not None and value < minimum:
            raise self.error(key, f"must be at least {minimum}, got {value}")
        return None if value is None else float(value)

    def bool(self, key: str, default: bool = False) -> bool:
        return self._get(key, (bool,), "true or false", default, False)

    def str_list(self, key: str, default: list[str] | None = None, required: bool = False) -> list[str]:
        value = self._get(key, (list,), "a list of strings", default, required)
        if value is None:
            return []
        for item in value:
            if not isinstance(item, str):
                raise self.error(key, f"expected a list of strings, found {item!r}")
        return list(value)

    def table(self, key: str) -> dict[str, Any]:
        return self._get(key, (dict,), "a table", {}, False)

    def secret(self, key: str, required: bool = True) -> Secret | None:
        """`key_cmd`, `key_env` or inline `key` (warned about if the file is readable by others)."""
        options = [k for k in (f"{key}_cmd", f"{key}_env", key) if k in self.raw]
        self.used.update({f"{key}_cmd", f"{key}_env", key})
        if len(options) > 1:
            raise self.error(options[1], f"give only one of {key}_cmd, {key}_env or {key}")
        if not options:
            if required:
                raise self.error(key, f"missing; set {key}_cmd (a command that prints it) or {key}_env "
                                      f"(an environment variable) for account '{self.name}'")
            return None
        name = options[0]
        value = self.raw[name]
        if not isinstance(value, str) or not value:
            raise self.error(name, "expected a non-empty string")
        source = "cmd" if name.endswith("_cmd") else "env" if name.endswith("_env") else "inline"
        line = self._locator.line_of("accounts", name, self.index) if self._locator else None
        return Secret(source, value, f"accounts[{self.index}].{name}", self.path, line)

    def unknown_keys(self) -> list[str]:
        return sorted(set(self.raw) - self.used)


@dataclass
class StoreSettings:
    """`[store]`: where a team's workspace lives when it is not the SQLite file in `data_dir`.

    `url` is a PostgreSQL URL without its password (postgresql://ana@db.shop.example/console);
    the password comes from `password_cmd` / `password_env` like every secret, read when the store
    is opened, never kept. Each agent connects as their own database role (README: Running a
    team), so the database knows who writes."""

    url: str
    secret: Secret | None = None
    line: int | None = None

    def password(self) -> str | None:
        return self.secret.get() if self.secret is not None else None

    def __repr__(self) -> str:
        return f"StoreSettings({self.url!r})"


@dataclass
class WorkspaceConfig:
    name: str = "My shop"
    agent: str = field(default_factory=lambda: _os_user())
    default_region: str = "US"
    data_dir: Path = field(default_factory=default_data_dir)
    response_target_minutes: int = 60
    send_delay_seconds: float = 0.0
    download_dir: Path = field(default_factory=lambda: Path(platformdirs.user_downloads_dir()) / "console")
    close_waiting_after_days: int = 0  # 0 = never close unanswered "waiting" conversations
    demo: bool = False
    accounts: list[AccountConfig] = field(default_factory=list)
    disabled_accounts: list[AccountConfig] = field(default_factory=list)  # `enabled = false`
    keymap: dict[str, str] = field(default_factory=dict)
    keymap_lines: dict[str, int | None] = field(default_factory=dict)
    templates: dict[str, str] = field(default_factory=dict)  # [templates]: name = "text with {first_name}"
    store: StoreSettings | None = None  # [store]: a PostgreSQL database instead of the SQLite file
    agent_set: bool = False  # `agent` was given in the file (else the OS user, or the database role)
    # Measuring and automation (console/hours.py, sla.py, rules/, csat.py, notify.py):
    business_hours: BusinessHours = field(default_factory=lambda: BusinessHours.always_open(local_zone_name()))
    sla: list[SlaPolicy] = field(default_factory=list)  # [[sla]], first match wins
    rules: list[Rule] = field(default_factory=list)  # [[rules]]
    csat: CsatSettings | None = None  # [csat]; None: no satisfaction question
    notifications: NotificationSettings = field(default_factory=NotificationSettings)
    outreach: OutreachSettings = field(default_factory=OutreachSettings)  # [outreach]: console/outreach/settings.py
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def store_path(self) -> Path:
        return self.data_dir / "console.db"

    @property
    def store_location(self) -> "Path | StoreSettings":
        """What `Store()` opens: the `[store]` database, or the SQLite file in the data dir."""
        return self.store if self.store is not None else self.store_path

    @property
    def policies(self) -> list[SlaPolicy]:
        """The `[[sla]]` policies, then `response_target_minutes` as the default for the rest."""
        return [*self.sla, default_policy(self.response_target_minutes, True)]


def _os_user() -> str:
    for name in ("LOGNAME", "USER", "LNAME", "USERNAME"):  # as getpass.getuser() looks, without importing it
        if os.environ.get(name):
            return os.environ[name]
    try:
        import pwd

        return pwd.getpwuid(os.getuid()).pw_name
    except (ImportError, KeyError):  # no user name anywhere (some containers)
        return "agent"


_TOP_LEVEL = {"workspace", "accounts", "keymap", "templates", "business_hours", "sla", "rules", "csat", "notifications",
              "outreach", "store"}
_STORE_KEYS = {"url", "password", "password_cmd", "password_env"}
_WORKSPACE_KEYS = {"name", "agent", "default_region", "data_dir", "response_target_minutes", "send_delay_seconds",
                   "close_waiting_after_days", "download_dir"}
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$")


def load(path: Path) -> WorkspaceConfig:
    """Read and validate a config file. Raises ConfigError naming file, line and key."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("file not found; copy config.example.toml there, or run `console --demo`", path) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read the file ({exc.__class__.__name__})", path) from None
    return parse(text, path)


def parse(text: str, path: Path | None = None) -> WorkspaceConfig:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(exc))
        raise ConfigError(f"not valid TOML: {message}", path, int(match.group(1)) if match else None) from None
    locator = _Locator(text)

    def err(table: str, key: str, message: str) -> ConfigError:
        return ConfigError(message, path, locator.line_of(table, key), f"{table}.{key}" if table else key)

    for key in data:
        if key not in _TOP_LEVEL:
            raise ConfigError(f"unknown setting; expected one of {', '.join(sorted(_TOP_LEVEL))}",
                              path, locator.line_of("", key) or locator.line_of(key), key)
    ws = WorkspaceConfig(path=path)
    section = data.get("workspace", {})
    if not isinstance(section, dict):
        raise ConfigError("expected a [workspace] table", path, None, "workspace")
    for key, value in section.items():
        if key not in _WORKSPACE_KEYS:
            raise err("workspace", key, f"unknown key; expected one of {', '.join(sorted(_WORKSPACE_KEYS))}")
        expected = {"response_target_minutes": int, "send_delay_seconds": (int, float),
                    "close_waiting_after_days": int}.get(key, str)
        if not isinstance(value, expected) or isinstance(value, bool):
            raise err("workspace", key, f"expected {'a number' if expected is not str else 'a string'}, got {value!r}")
    ws.name = section.get("name", ws.name)
    ws.agent = section.get("agent", ws.agent)
    ws.agent_set = "agent" in section
    ws.store = _store_settings(data.get("store"), path, locator)
    region = section.get("default_region", ws.default_region).upper()
    from console.regions import SUPPORTED_REGIONS

    if region not in SUPPORTED_REGIONS:
        raise err("workspace", "default_region", f"unknown region {region!r}; use a two-letter country code such as US or GB")
    ws.default_region = region
    if "download_dir" in section:
        ws.download_dir = Path(section["download_dir"]).expanduser()
    if "data_dir" in section:
        ws.data_dir = Path(section["data_dir"]).expanduser()
    else:
        ws.data_dir = default_data_dir(_slug(ws.name))
    ws.response_target_minutes = section.get("response_target_minutes", ws.response_target_minutes)
    ws.send_delay_seconds = float(section.get("send_delay_seconds", ws.send_delay_seconds))
    ws.close_waiting_after_days = section.get("close_waiting_after_days", 0)
    if ws.close_waiting_after_days < 0:
        raise err("workspace", "close_waiting_after_days", "must be 0 (never) or a number of days")
    if ws.response_target_minutes <= 0:
        raise err("workspace", "response_target_minutes", "must be a positive number of minutes")

    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict):
        raise ConfigError("expected a [keymap] table", path, locator.line_of("keymap"), "keymap")
    for key, value in keymap.items():
        if not isinstance(value, str) or not value.strip():
            raise err("keymap", key, 'expected keys as a string, e.g. reply = "r" or reply = "r,ctrl+r"')
    ws.keymap = dict(keymap)
    ws.keymap_lines = {key: locator.line_of("keymap", key) for key in keymap}

    templates = data.get("templates", {})
    if not isinstance(templates, dict):
        raise ConfigError("expected a [templates] table", path, locator.line_of("templates"), "templates")
    for key, value in templates.items():
        if not isinstance(value, str) or not value.strip():
            raise err("templates", key, 'expected the reply text as a string, e.g. thanks = "Thank you, {first_name}!"')
    ws.templates = dict(templates)

    outreach = data.get("outreach", {})
    if not isinstance(outreach, dict):
        raise ConfigError("expected an [outreach] table", path, locator.line_of("outreach"), "outreach")
    ws.outreach = outreach_from_table(
        outreach, lambda key, message: err("outreach", key, message), ws.name,
        lambda key, message: ConfigError(message, path, locator.line_of("outreach.pacing", key), f"outreach.pacing.{key}"))

    accounts = data.get("accounts", [])
    if not isinstance(accounts, list):
        raise ConfigError("expected [[accounts]] tables", path, locator.line_of("accounts"), "accounts")
    names: set[str] = set()
    for index, raw in enumerate(accounts):
        line = locator.line_of("accounts", None, index)
        kind = raw.get("kind")
        if kind not in KINDS:
            raise ConfigError(f"expected kind to be one of {', '.join(KINDS)}, got {kind!r}", path,
                              locator.line_of("accounts", "kind", index) or line, f"accounts[{index}].kind")
        name = raw.get("name")
        if not isinstance(name, str) or not _NAME_RE.match(name):
            raise ConfigError("expected a short name of letters, digits, '-', '_' or '.' (e.g. \"support\")",
                              path, locator.line_of("accounts", "name", index) or line, f"accounts[{index}].name")
        if name in names:
            raise ConfigError(f"two accounts are named {name!r}; names must be unique", path,
                              locator.line_of("accounts", "name", index), f"accounts[{index}].name")
        names.add(name)
        account = AccountConfig(name, kind, raw, index, path, locator, ws)
        enabled = raw.get("enabled", True)
        if not isinstance(enabled, bool):
            raise account.error("enabled", f"expected true or false, got {enabled!r}")
        (ws.accounts if enabled else ws.disabled_accounts).append(account)

    _automation(ws, data, path, locator)

    inline_store = isinstance(data.get("store"), dict) and "password" in data["store"]
    if path is not None and (_has_inline_secret(accounts) or inline_store):
        try:
            mode = path.stat().st_mode
            if mode & (stat.S_IRGRP | stat.S_IROTH):
                ws.warnings.append(
                    f"{path} holds a password inline and other users can read it: run `chmod 600 {path}`, "
                    "or use a *_cmd / *_env setting instead")
        except OSError:
            pass
    return ws


def _store_settings(section, path: Path | None, locator: _Locator) -> StoreSettings | None:
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ConfigError("expected a [store] table", path, locator.line_of("store"), "store")

    def err(key: str, message: str) -> ConfigError:
        return ConfigError(message, path, locator.line_of("store", key), f"store.{key}")

    for key in section:
        if key not in _STORE_KEYS:
            raise err(key, f"unknown key; expected one of {', '.join(sorted(_STORE_KEYS))}")
    url = section.get("url")
    if url is None:
        raise ConfigError("missing url; expected url = \"postgresql://ROLE@HOST/DATABASE\"", path,
                          locator.line_of("store"), "store.url")
    if not isinstance(url, str) or url.split("://", 1)[0] not in ("postgresql", "postgres") or "://" not in url:
        raise err("url", f"expected a PostgreSQL URL such as postgresql://ana@db.example/shop, got {url!r}")
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError as exc:
        raise err("url", f"not a valid URL ({exc})") from None
    if parts.password is not None:
        raise err("url", "holds a password; put it in password_cmd or password_env instead (never in the file)")
    options = [k for k in ("password_cmd", "password_env", "password") if k in section]
    if len(options) > 1:
        raise err(options[1], "give only one of password_cmd, password_env or password")
    secret = None
    if options:
        name = options[0]
        value = section[name]
        if not isinstance(value, str) or not value:
            raise err(name, "expected a non-empty string")
        source = "cmd" if name.endswith("_cmd") else "env" if name.endswith("_env") else "inline"
        secret = Secret(source, value, f"store.{name}", path, locator.line_of("store", name))
    return StoreSettings(url, secret, locator.line_of("store", "url"))


def store_settings(url: str, password_env: str | None = None, password_cmd: str | None = None) -> StoreSettings:
    """`[store]` settings given on the command line (`console migrate --to`), checked by the same
    rules as the config file's: no password in the URL, the password from a command or a variable."""
    section: dict[str, str] = {"url": url}
    if password_env:
        section["password_env"] = password_env
    if password_cmd:
        section["password_cmd"] = password_cmd
    return _store_settings(section, None, _Locator(""))


def _automation(ws: WorkspaceConfig, data: dict, path: Path | None, locator: _Locator) -> None:
    """The measuring and automation sections; each module parses its own, errors located here."""
    def table_err(table: str):
        def err(key: str, message: str) -> ConfigError:
            line = locator.line_of(table, key.split(".")[0]) if key else locator.line_of(table)
            if "." in key:  # [notifications.accounts] name = ...
                sub, name = key.split(".", 1)
                line = locator.line_of(f"{table}.{sub}", name) or line
            return ConfigError(message, path, line, f"{table}.{key}" if key else table)
        return err

    def array_err(table: str):
        def err(index: int | None, key: str, message: str) -> ConfigError:
            if index is None:
                return ConfigError(message, path, locator.line_of(table), table)
            line = locator.line_of(table, key or None, index) if key else locator.line_of(table, None, index)
            return ConfigError(message, path, line, f"{table}[{index}].{key}" if key else f"{table}[{index}]")
        return err

    channels = {entry.id for entry in catalog.channels()}
    accounts = {a.name for a in ws.accounts + ws.disabled_accounts}
    ws.business_hours = parse_business_hours(data.get("business_hours"), table_err("business_hours"))
    ws.sla = parse_policies(data.get("sla", []), array_err("sla"))
    for index, policy in enumerate(ws.sla):
        for account in policy.accounts - accounts:
            raise array_err("sla")(index, "accounts", f"no account is named {account!r}")
        for channel in policy.channels - channels:
            raise array_err("sla")(index, "channels", f"unknown channel {channel!r}")
    ws.rules = parse_rules(data.get("rules", []), array_err("rules"), ws.templates, accounts, channels)
    ws.csat = parse_csat(data.get("csat"), table_err("csat"), channels)
    ws.notifications = parse_notifications(data.get("notifications"), table_err("notifications"), accounts)


def _slug(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return slug or "default"


def _has_inline_secret(accounts: list[dict]) -> bool:
    secret_names = catalog.secret_keys()
    return any(isinstance(raw, dict) and any(k in raw for k in secret_names) for raw in accounts)


def demo_config(data_dir: Path | None = None) -> WorkspaceConfig:
    """The demo workspace: demo accounts only, in its own data dir, never the user's real store.
    It opens Tuesday to Sunday like the bakery it shows, in the machine's time zone, with two SLA
    policies, three rules and the satisfaction question, so all of it can be tried."""
    import datetime as dt

    from console.demo_data import OPEN_DAYS, OPEN_HOURS

    base = data_dir or Path(platformdirs.user_data_dir(APP_NAME)) / "demo"
    year = dt.date.fromtimestamp(time.time()).year
    holidays = ", ".join(f'"{y}-{md}"' for y in (year, year + 1) for md in ("01-01", "12-25", "12-26"))
    text = (
        '[workspace]\nname = "Crumb & Co. Bakery (demo)"\ndefault_region = "US"\nclose_waiting_after_days = 3\n'
        'response_target_minutes = 120\n'
        '[[accounts]]\nkind = "demo"\nname = "mail"\nchannels = ["email"]\n'
        '[[accounts]]\nkind = "demo"\nname = "phone"\nchannels = ["sms", "whatsapp"]\n'
        '[accounts.templates]\norder_ready = "HXdemo0001"\nfollow_up = "HXdemo0002"\n'
        '[[accounts]]\nkind = "demo"\nname = "social"\nchannels = ["telegram", "instagram", "messenger"]\n'
        '[templates]\n'
        'ready = "Hi {first_name}, your order is ready for pickup today from 4pm. See you soon! {agent}"\n'
        'thanks = "Thank you so much, {first_name}! Have a lovely day. {agent} at {business}"\n'
        'hours = "Hi {first_name}! We are open Tuesday to Sunday, 7am to 3pm. {agent}"\n'
        'order = "Hi {first_name}, your order {order_number} is confirmed for {pickup_day}. {agent}"\n'
        'closed = "Hi {first_name}, thanks for your message! The bakery is closed right now: we open again at '
        '7am (Tuesday to Sunday) and will answer you then."\n'
        f'[business_hours]\ntimezone = "{local_zone_name()}"\n'
        + "".join(f'{day} = "{OPEN_HOURS}"\n' for day in OPEN_DAYS) + f'holidays = [{holidays}]\n'
        '[[sla]]\nname = "wholesale"\nfirst_response_minutes = 30\nnext_response_minutes = 60\n'
        'resolution_minutes = 480\ntags = ["wholesale"]\n'
        '[[sla]]\nname = "chat"\nfirst_response_minutes = 20\n'
        'channels = ["whatsapp", "telegram", "instagram", "messenger"]\n'
        '[[rules]]\nname = "wholesale"\non = "message_received"\ntext_contains = ["wholesale", "café", "invoice"]\n'
        'add_tag = ["wholesale"]\nassign = "ben"\n'
        '[[rules]]\nname = "after-hours"\non = "message_received"\nhours = "outside"\nreply_template = "closed"\n'
        '[[rules]]\nname = "breaching"\non = "sla_breaching"\nafter_minutes = 10\n'
        'notify = "{name} ({channel}) is due an answer within 10 minutes"\n'
        '[csat]\nquestion = "Thanks for ordering with Crumb & Co.! How did we do? Reply 1-5"\nafter_minutes = 5\n'
        '[notifications]\nlevel = "mine"\n'
        '[outreach]\nquiet_hours = "20:00-09:00"\ntimezone = "America/New_York"\n'
        'unsubscribe_address = "unsubscribe@crumbandco.example"\ntest_addresses = ["email:ana@crumbandco.example"]\n'
    )
    ws = parse(text)
    ws.data_dir = base
    ws.demo = True
    return ws
