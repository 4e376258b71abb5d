"""Which `os.environ/NAME` references a secret manager answers, one concurrent batch of reads,
and what a config parse makes of the answers (values, or error lines by YAML path).

LiteLLM's rules: with a manager whose `access_mode` reads (`read_only`, the default, or
`read_and_write`), every reference is read from the manager, or only the names listed in
`hosted_keys` when that is given; the manager's value wins over the environment's; a name
the manager does not have is read from the environment. laneway adds one rule: a name read
from the manager that ends up with no value at all (the manager has none, or could not be
asked, and the environment has none) is a config error naming the YAML path and the secret,
never silently None. A manager that cannot be asked while the environment has the name falls
back to the environment (as LiteLLM does), with a warning.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pydantic import ValidationError

from router.config.env import reference
from router.config.paths import Loc, format_path
from router.config.settings import KeyManagementSettings
from router.httpclient import UpstreamClient
from router.secrets.base import Manager, SecretNotFound, SecretUnavailable, env_first

log = logging.getLogger("laneway.config")

__all__ = ["Binding", "fetch", "secrets_for", "updated"]

_MANAGERS = {
    "aws_secret_manager": ("router.secrets.aws", "AwsSecretsManager"),
    "google_secret_manager": ("router.secrets.gcp", "GoogleSecretManager"),
    "azure_key_vault": ("router.secrets.azure", "AzureKeyVault"),
    "hashicorp_vault": ("router.secrets.vault", "HashicorpVault"),
}
# LiteLLM's own refresh settings, honoured when `refresh_interval` is not given.
_REFRESH_ENV = {"hashicorp_vault": "HCP_VAULT_REFRESH_INTERVAL",
                "google_secret_manager": "GOOGLE_SECRET_MANAGER_REFRESH_INTERVAL"}
_SETTINGS_PATHS = (("general_settings", "key_management_system"),
                   ("general_settings", "key_management_settings"))


@dataclass
class Binding:
    """What a config reads from its manager: kept on the config (`config._secrets`) so that a
    running Router can read the same names again and re-parse the same document."""

    system: str
    manager: Manager
    asked: dict[str, str]
    """Reference name → the name asked of the manager (prefixed, mapped)."""
    paths: dict[str, list[Loc]]
    primary: str | None
    interval: float | None
    values: dict[str, str] = field(default_factory=dict)
    """Reference name → the last value the manager gave (never logged, never repr'd)."""
    document: tuple[Any, ...] = ()
    """What `router.config.load` needs to parse the same config again."""

    def __repr__(self) -> str:
        return f"Binding({self.system}, {len(self.asked)} names)"


def secrets_for(sections: dict[str, Any], env: Mapping[str, str],
                refreshed: Binding | None = None
                ) -> tuple[Binding | None, dict[str, str], list[str]]:
    """(binding, reference name → value for `resolve`, error lines). With `refreshed` its
    values are used as they are (a refresh already read them): nothing is fetched."""
    from router.config.env import resolve

    general = sections["general_settings"]
    picked, _ = resolve({k: general.get(k) for k in ("key_management_system",
                                                       "key_management_settings")},
                        env, ("general_settings",))
    system = picked.get("key_management_system")
    try:
        settings = KeyManagementSettings.model_validate(picked.get("key_management_settings")
                                                        or {})
    except ValidationError:
        return None, {}, []  # the config's own validation reports it, by path
    if system not in _MANAGERS:
        return None, {}, []  # likewise: "must be one of"
    if settings.access_mode == "write_only":
        return None, {}, []  # LiteLLM reads nothing from a write-only manager

    module, name = _MANAGERS[system]
    manager: Manager = (refreshed.manager if refreshed is not None else getattr(
        importlib.import_module(module), name)(env, settings.api_base, settings.timeout))
    paths = _references(sections)
    if settings.hosted_keys is not None:
        hosted = set(settings.hosted_keys)
        paths = {n: p for n, p in paths.items() if n in hosted}
    errors: list[str] = []
    asked: dict[str, str] = {}
    for ref, where in paths.items():
        try:
            asked[ref] = (settings.primary_secret_name if settings.primary_secret_name
                          else manager.secret_name(f"{settings.prefix or ''}{ref}"))
        except ValueError as exc:
            errors += [f"{format_path(p)}: secret name {ref} cannot be read from "
                       f"{manager.label}: {exc}" for p in where]
    if settings.primary_secret_name:
        try:
            manager.secret_name(settings.primary_secret_name)
        except ValueError as exc:
            errors.append(f"general_settings.key_management_settings.primary_secret_name: "
                          f"{exc}")
            asked = {}
    binding = Binding(system, manager, asked, paths, settings.primary_secret_name,
                      _interval(settings, system, env))
    if refreshed is not None:
        binding.values = {k: v for k, v in refreshed.values.items() if k in asked}
        outcome: dict[str, str | Exception] = dict(binding.values)
    else:
        outcome = _fetch_now(binding) if asked else {}
    values: dict[str, str] = {}
    for ref, result in outcome.items():
        if isinstance(result, str):
            values[ref] = binding.values[ref] = result
            continue
        env_value = env.get(ref)
        if env_value is not None:
            if isinstance(result, SecretUnavailable):
                log.warning("secret %s could not be read from %s (%s); using the "
                            "environment's value", ref, manager.label, result)
            values[ref] = env_value
            continue
        why = (f"not found in {manager.label}" if isinstance(result, SecretNotFound)
               else f"could not be read from {manager.label} ({result})")
        errors += [f"{format_path(p)}: secret {asked[ref]} {why} and {ref} is not set in the "
                   f"environment" for p in paths[ref]]
    for ref in asked.keys() - outcome.keys():  # a refresh: never had a value in the manager
        if ref in env:
            values[ref] = env[ref]
        else:
            errors += [f"{format_path(p)}: secret {asked[ref]} not found in {manager.label} "
                       f"and {ref} is not set in the environment" for p in paths[ref]]
    return binding, values, errors


def _references(sections: Mapping[str, Any]) -> dict[str, list[Loc]]:
    found: dict[str, list[Loc]] = {}

    def walk(value: Any, here: Loc) -> None:
        if here in _SETTINGS_PATHS:
            return  # how to reach the manager comes from the environment, never the manager
        if isinstance(value, dict):
            for key, item in value.items():
                walk(item, (*here, str(key)))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, (*here, index))
        else:
            name = reference(value)
            if name:
                found.setdefault(name, []).append(here)

    walk(sections, ())
    return found


def _interval(settings: KeyManagementSettings, system: str, env: Mapping[str, str]
              ) -> float | None:
    if settings.refresh_interval is not None:
        return float(settings.refresh_interval)
    raw = env_first(env, _REFRESH_ENV.get(system, ""))
    try:
        seconds = float(raw) if raw else 0.0
    except ValueError:
        return None
    return seconds if seconds > 0 else None


def _fetch_now(binding: Binding) -> dict[str, str | Exception]:
    """The cold-start batch, from synchronous code (config parsing): one private client."""
    from router.httpclient.oneshot import SyncClient

    with SyncClient() as http:
        return http.run(lambda client: fetch(binding, client))


async def fetch(binding: Binding, client: UpstreamClient) -> dict[str, str | Exception]:
    """Every name of `binding` read at once: reference name → value, SecretNotFound or
    SecretUnavailable. Credentials or a token are fetched once, before the reads."""
    manager = binding.manager
    try:
        await manager.prepare(client)
    except SecretUnavailable as exc:
        return dict.fromkeys(binding.asked, exc)
    if binding.primary is not None:
        return await _from_primary(binding, client)
    names = sorted(set(binding.asked.values()))
    answers = await asyncio.gather(*(manager.read(client, n) for n in names),
                                   return_exceptions=True)
    by_name = {n: _checked(a, manager.label) for n, a in zip(names, answers, strict=True)}
    return {ref: by_name[asked] for ref, asked in binding.asked.items()}


async def _from_primary(binding: Binding, client: UpstreamClient
                        ) -> dict[str, str | Exception]:
    """LiteLLM's `primary_secret_name`: one secret holding a JSON object of name → value."""
    import orjson

    assert binding.primary is not None
    try:
        raw = await binding.manager.read(client, binding.primary)
        table = orjson.loads(raw)
        if not isinstance(table, dict):
            raise ValueError
    except (SecretNotFound, SecretUnavailable) as exc:
        return dict.fromkeys(binding.asked, exc)
    except ValueError:
        return dict.fromkeys(binding.asked, SecretUnavailable(
            f"secret {binding.primary} is not a JSON object of names and values"))
    out: dict[str, str | Exception] = {}
    for ref in binding.asked:
        value = table.get(ref)
        out[ref] = (SecretNotFound(ref) if value is None
                    else value if isinstance(value, str) else orjson.dumps(value).decode())
    return out


def _checked(answer: Any, label: str) -> str | Exception:
    if isinstance(answer, str | SecretNotFound | SecretUnavailable):
        return answer
    if isinstance(answer, BaseException) and not isinstance(answer, Exception):
        raise answer  # cancellation, interrupts: not a failed read
    log.error("reading a secret from %s failed unexpectedly: %s", label,
              type(answer).__name__)
    return SecretUnavailable(f"unexpected {type(answer).__name__}")


def updated(binding: Binding, results: Mapping[str, str | Exception]) -> Binding | None:
    """`binding` with the values a refresh read, or None when nothing changed. A name the
    refresh could not read keeps its last good value (with a warning)."""
    values = dict(binding.values)
    for ref, result in results.items():
        if isinstance(result, str):
            values[ref] = result
        elif ref in values:
            why = ("is no longer there" if isinstance(result, SecretNotFound)
                   else f"could not be read ({result})")
            log.warning("secret refresh: %s in %s %s; keeping its last value",
                        binding.asked[ref], binding.manager.label, why)
    if values == binding.values:
        return None
    return replace(binding, values=values)
