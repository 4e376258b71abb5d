"""Turn a config source into a validated `Config`, reporting every problem at once by YAML path."""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

from pydantic import ValidationError

from router.config.callbacks import callback_warnings
from router.config.deployments import deployment_problems
from router.config.env import file_environment, resolve
from router.config.include import expand_includes
from router.config.keys import extra_keys
from router.config.paths import format_path
from router.config.redis import redis_problems
from router.config.schema import Config
from router.config.sources import Fetched, Origin, Reader, locate
from router.errors import ConfigError

logger = logging.getLogger("laneway.config")

# Pydantic error types whose stock wording names Python types; users think in YAML.
_PLAIN_MESSAGES = {
    "missing": "is required",
    "model_type": "must be a mapping",
    "model_attributes_type": "must be a mapping",
    "dict_type": "must be a mapping",
    "list_type": "must be a list",
}


def load_config(source: str | None = None, *, environ: Mapping[str, str] | None = None) -> Config:
    """Find, read and validate the config (see `sources.locate` for where it is looked for)."""
    env = os.environ if environ is None else environ
    with Reader(env) as reader:
        return read_config(locate(source, env), reader)


def read_config(location: str, reader: Reader) -> Config:
    """The config at `location` with its includes, every document read through `reader`; the
    config's `origin` lists them with their versions, for a reload check."""
    files: list[Fetched] = []

    def read(where: str) -> Any:
        fetched = reader.read(where)
        files.append(fetched)
        return parse_yaml(fetched.body, where)

    data = read(location)
    data, errors, warnings = expand_includes(data, location, read)
    if errors:
        raise _problems(location, errors)
    config = _parse(data, reader.environ, location, warnings)
    config._origin = Origin(location, reader.environ, tuple(files))
    return config


def parse_yaml(raw: bytes, location: str) -> Any:
    import yaml

    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(f"config {location} is not UTF-8 text") from None
    try:
        data = yaml.load(text, Loader=_loader())  # a SafeLoader subclass: no arbitrary objects
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown line"
        # problem/context describe the syntax; str(exc) would quote the file, secrets and all.
        what = "; ".join(part for part in (exc.context, exc.problem) if part) or "syntax error"
        if "alias" in (exc.context or ""):
            what += ' (a value starting with * or & must be quoted, e.g. model_name: "*")'
        raise ConfigError(f"invalid YAML in {location} at {where}: {what}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML in {location}: {type(exc).__name__}") from None
    if data is None:
        raise ConfigError(f"config {location} is empty")
    return data


@functools.cache
def _loader() -> type:
    """A safe loader that keeps dates as text: `api_version: 2024-02-01` is a string, not a date.
    LibYAML's parser when PyYAML was built with it (several times faster on a long model_list),
    PyYAML's own otherwise; both report errors with the same marks."""
    import yaml

    class Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
        pass

    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return Loader


def parse_config(
    data: Any, *, environ: Mapping[str, str] | None = None, source: str = "<config>"
) -> Config:
    """Validate an already-parsed YAML document; raise one ConfigError listing every problem.

    `include:` is resolved only by `load_config`, which knows where the document came from."""
    if isinstance(data, dict) and data.get("include") is not None:
        raise _problems(source, ["include: files are included only when the config is read "
                                 "with load_config (from a file or a bucket)"])
    return _parse(data, environ, source, [])


def _parse(data: Any, environ: Mapping[str, str] | None, source: str,
           warnings: list[str], refreshed: Any = None) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(
            f"config {source} must be a mapping with sections such as model_list and "
            f"router_settings, not a {type(data).__name__}"
        )
    process_env = dict(os.environ if environ is None else environ)
    file_env, errors = file_environment(data.get("environment_variables"), process_env)
    env = {**file_env, **process_env}
    sections = {key: value for key, value in data.items()
                if key not in ("environment_variables", "include")}
    secret_values: dict[str, str] = {}
    binding = None
    if refreshed is not None or _wants_manager(sections):
        # Only a config naming a secret manager imports router/secrets (and asks it).
        from router.secrets.load import secrets_for

        binding, secret_values, secret_errors = secrets_for(sections, env, refreshed)
        errors += secret_errors
        if binding is not None:
            binding.document = (data, environ, source, tuple(warnings))
    document, env_errors = resolve(sections, {**env, **secret_values})
    reported = {line.partition(": ")[0] for line in errors}
    errors += [line for line in env_errors if line.partition(": ")[0] not in reported]
    document["environment_variables"] = file_env
    errors += _merge_credentials(document)
    extras = extra_keys(document, Config)

    config: Config | None = None
    try:
        config = Config.model_validate(document)
    except ValidationError as exc:
        # A required value whose variable is unset was already reported with the variable name.
        reported = {line.partition(": ")[0] for line in errors}
        errors += [
            line for line in _validation_lines(exc) if line.partition(": ")[0] not in reported
        ]
    if config is not None:
        errors += deployment_problems(config.model_list, env)
        errors += redis_problems(config.router_settings, env)
    if errors or config is None:
        raise _problems(source, errors)

    warnings = [*extras.unknown, *warnings, *callback_warnings(config.litellm_settings)]
    if warnings and refreshed is None:
        # Logged here and only here: whatever reads the config later does not repeat them.
        logger.warning("config %s: ignoring or overriding:\n%s", source, "\n".join(warnings))
    if extras.unused and refreshed is None:
        logger.info("config %s: accepted but not used by laneway: %s", source,
                    ", ".join(extras.unused))
    config._env = MappingProxyType(env)
    config._warnings = tuple(warnings)
    config._source = source
    config._secrets = binding
    return config


def _wants_manager(sections: dict[str, Any]) -> bool:
    general = sections.get("general_settings")
    return isinstance(general, dict) and general.get("key_management_system") is not None


def with_secrets(config: Config, binding: Any) -> Config:
    """`config` parsed again from the same document with the secret values `binding` holds
    (a refresh read them): the hook through which a changed secret reaches new requests."""
    data, environ, source, warnings = binding.document
    fresh = _parse(data, environ, source, list(warnings), refreshed=binding)
    fresh._origin = config._origin
    return fresh


def _problems(source: str, errors: list[str]) -> ConfigError:
    count = f"{len(errors)} problems" if len(errors) > 1 else "a problem"
    return ConfigError(f"config {source} has {count}:\n" + "\n".join(errors))


def _validation_lines(exc: ValidationError) -> list[str]:
    lines = []
    for error in exc.errors(include_url=False, include_input=False):
        path = format_path(tuple(p if isinstance(p, int) else str(p) for p in error["loc"]))
        lines.append(f"{path}: {_PLAIN_MESSAGES.get(error['type'], error['msg'])}")
    return lines


def _merge_credentials(document: dict[str, Any]) -> list[str]:
    """Fill each deployment's litellm_params from the credential it names (its own values win)."""
    errors: list[str] = []
    credentials: dict[str, dict[str, Any]] = {}
    entries = document.get("credential_list")
    for index, entry in enumerate(entries if isinstance(entries, list) else []):
        name = entry.get("credential_name") if isinstance(entry, dict) else None
        if not isinstance(name, str):
            continue  # validation reports the missing or malformed name
        if name in credentials:
            errors.append(
                f"credential_list[{index}].credential_name: duplicate credential '{name}'"
            )
        values = entry.get("credential_values")
        credentials[name] = values if isinstance(values, dict) else {}

    models = document.get("model_list")
    for index, entry in enumerate(models if isinstance(models, list) else []):
        params = entry.get("litellm_params") if isinstance(entry, dict) else None
        if not isinstance(params, dict) or params.get("litellm_credential_name") is None:
            continue
        name = params["litellm_credential_name"]
        if name not in credentials:
            known = ", ".join(sorted(credentials)) or "none are defined"
            errors.append(
                f"model_list[{index}].litellm_params.litellm_credential_name: unknown credential "
                f"'{name}' (credential_list has: {known})"
            )
            continue
        merged = {k: v for k, v in credentials[name].items() if v is not None}
        merged.update({k: v for k, v in params.items() if v is not None})
        entry["litellm_params"] = merged
    return errors
