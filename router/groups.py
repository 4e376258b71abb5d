"""Deployments and model groups: what a client's `model` name resolves to.

A *deployment* is one upstream endpoint (one `model_list` entry, or one organization of an entry
that lists several). A *model group* is every deployment sharing a `model_name`; clients call
groups, laneway picks deployments. Each deployment has a stable id (its `model_info.id`, else a
hash of its params) so every instance of laneway names it the same way in shared state.
"""

from __future__ import annotations

import collections
import fnmatch
import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

import orjson

from router.errors import NotFound, echoed
from router.providers._per_deployment import PerDeployment
from router.providers.catalog import split_model

if TYPE_CHECKING:
    from router.config import Config, ModelEntry
    from router.tokens import TokenCounter

__all__ = ["Deployment", "Group", "ModelGroups", "build_deployments", "is_secret_name",
           "remember_secret"]

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_WILDCARD_CACHE_SIZE = 1024
# Words that, as one part of a field or variable name, say it holds a credential
# (`api_key`, `azure_client_secret`, `vertex_credentials`, `AWS_SESSION_TOKEN`, `apiKey`).
_SECRET_WORDS = frozenset({"key", "apikey", "secret", "token", "password", "passwd", "pwd",
                           "credential", "credentials", "auth", "authorization", "bearer",
                           "signature", "sas", "cookie"})
# Credentials adapters obtain at run time (AWS credentials from a profile or an instance role):
# the latest few, as they rotate.
_RUNTIME_SECRETS: collections.deque[str] = collections.deque(maxlen=32)


def remember_secret(value: str | None) -> None:
    """Note a credential an adapter sends that the config and environment do not hold, so that
    error messages redact it too."""
    if value and len(value) >= 4 and value not in _RUNTIME_SECRETS:
        _RUNTIME_SECRETS.append(value)


_NAME_PARTS = re.compile(r"[^a-z0-9]+")
_CAMEL = re.compile(r"([a-z0-9])([A-Z])")


def is_secret_name(name: str) -> bool:
    """Whether a field or variable named `name` holds a credential (`input_cost_per_token`
    and `max_tokens` do not)."""
    parts = _NAME_PARTS.split(_CAMEL.sub(r"\1_\2", name).lower())
    return any(p in _SECRET_WORDS and not (p == "token" and i and parts[i - 1] == "per")
               for i, p in enumerate(parts))


@dataclass(frozen=True, slots=True)
class Deployment:
    id: str
    model_name: str
    """The group name clients call."""
    provider: str
    """Adapter prefix: "openai", "azure", "bedrock", "mock", ..."""
    model: str
    """The upstream model id, provider prefix removed."""
    api_base: str | None = None
    api_key: str | None = None
    api_version: str | None = None
    organization: str | None = None
    timeout: float | None = None
    stream_timeout: float | None = None
    rpm: int | None = None
    tpm: int | None = None
    max_parallel_requests: int | None = None
    weight: float | None = None
    mock_response: Any = None
    extra_headers: Mapping[str, str] = field(default_factory=lambda: _EMPTY)
    defaults: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """OpenAI request params the config sets for this deployment (used when the client doesn't)."""
    params: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    """Every `litellm_params` value, for provider-specific keys (aws_region_name, roles, ...)."""
    model_info: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    wildcard: bool = False
    requested_model: bool = False
    """The upstream model id is the client's (a wildcard entry whose model ends in `*`): an
    upstream that does not have it, will not serve it to this key, or limits it on its own
    (404, 403, 429) is refusing the request, not failing."""
    env: Mapping[str, str] = field(default_factory=lambda: os.environ, repr=False,
                                   compare=False)
    """The environment adapters read (keys, base URLs, AWS and Azure variables): the config's
    `environment_variables` overlaid by the process environment. Never printed."""

    @property
    def secrets(self) -> tuple[str, ...]:
        """Values that must never appear in a log line or an error body: every credential
        laneway may send for this deployment, from the config or from the environment.
        Longest first, so that a secret containing another one is removed whole."""
        found = {str(v) for v in _secret_values(self.params)}
        found.update(str(v) for v in _secret_values(self.model_info))
        found.update(str(v) for v in self.extra_headers.values())
        if self.api_key:
            found.add(str(self.api_key))
        # From the environment only values long enough to be keys: a `..._TOKEN_ENABLED=true`
        # must not blank out every "true" of an error message.
        found.update(v for k, v in self.env.items() if len(v) >= 8 and is_secret_name(k))
        found.update(_RUNTIME_SECRETS)
        return tuple(sorted((s for s in found if len(s) >= 4), key=len, reverse=True))

    def token_counter(self) -> TokenCounter:
        """Counts tokens as this deployment's model does: its `custom_tokenizer`, else by
        model name (`base_model` names the model behind Azure-style deployment names)."""
        return _counters(self)

    def public_info(self) -> dict[str, Any]:
        """What /model/info may show: everything but credentials (fields named like one, header
        values, and the userinfo and query of URLs)."""
        params = _public(self.params)
        params.pop("extra_headers", None)
        if self.extra_headers:
            params["extra_headers"] = dict.fromkeys(self.extra_headers, "[redacted]")
        return {
            "model_name": self.model_name,
            "litellm_params": params,
            "model_info": {**_public(self.model_info), "id": self.id},
        }


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    deployments: tuple[Deployment, ...]
    by_id: Mapping[str, Deployment] = field(default_factory=lambda: _EMPTY)

    @classmethod
    def of(cls, name: str, deployments: Iterable[Deployment]) -> Group:
        ds = tuple(deployments)
        return cls(name, ds, MappingProxyType({d.id: d for d in ds}))


_SECRET_PARAMS = frozenset({"api_key", "azure_ad_token", "aws_access_key_id",
                            "aws_secret_access_key", "aws_session_token"})


def _secret_values(node: Any, named: bool = False) -> Iterator[Any]:
    """Every scalar under a credential-named key (at any depth), and every URL's userinfo."""
    if isinstance(node, Mapping):
        for k, v in node.items():
            yield from _secret_values(v, named or is_secret_name(str(k)))
    elif isinstance(node, list | tuple):
        for item in node:
            yield from _secret_values(item, named)
    elif node is not None and not isinstance(node, bool):
        if named:
            yield str(node)
        elif isinstance(node, str) and "://" in node:
            userinfo = urlsplit(node).netloc.rpartition("@")[0]
            yield from (part for part in (userinfo, *userinfo.split(":")) if part)


def _public(node: Any) -> Any:
    """`node` without credential-named keys, with URLs stripped of userinfo and query."""
    if isinstance(node, Mapping):
        return {k: _public(v) for k, v in node.items() if not is_secret_name(str(k))}
    if isinstance(node, list | tuple):
        return [_public(item) for item in node]
    if isinstance(node, str) and "://" in node:
        return _public_url(node)
    return node


def _public_url(url: str) -> str:
    try:
        parts = urlsplit(url)
    except ValueError:
        return "[redacted]"
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _stable_id(entry_name: str, params: Mapping[str, Any], organization: str | None) -> str:
    # Credentials are left out so that rotating a key keeps the deployment's id (and its
    # shared counters) stable across a rolling deploy.
    public = {k: v for k, v in params.items() if k not in _SECRET_PARAMS}
    canonical = orjson.dumps(
        {"model_name": entry_name, "params": public, "organization": organization},
        option=orjson.OPT_SORT_KEYS,
        default=str,
    )
    return hashlib.sha256(canonical).hexdigest()[:16]


def _first(*values: Any) -> Any:
    return next((v for v in values if v is not None), None)


def _deployments_of(entry: ModelEntry, env: Mapping[str, str]) -> list[Deployment]:
    lp = entry.litellm_params
    info = entry.model_info.model_dump(exclude_none=True) if entry.model_info else {}
    params = lp.provider_params()
    provider, model = split_model(lp.model)
    if lp.mock_response is not None:
        provider = "mock"
    orgs: list[str | None]
    if isinstance(lp.organization, list):
        orgs = list(lp.organization) or [None]
    else:
        orgs = [lp.organization]
    out = []
    for org in orgs:
        given_id = info.get("id")
        if given_id is not None and len(orgs) > 1:
            given_id = f"{given_id}-{org}"
        dep_id = (str(given_id) if given_id is not None
                  else _stable_id(entry.model_name, params, org))
        out.append(
            Deployment(
                id=dep_id,
                model_name=entry.model_name,
                provider=provider,
                model=model,
                api_base=lp.api_base,
                api_key=lp.api_key,
                api_version=lp.api_version,
                organization=org,
                timeout=lp.timeout,
                stream_timeout=lp.stream_timeout,
                rpm=_first(lp.rpm, entry.rpm, info.get("rpm")),
                tpm=_first(lp.tpm, entry.tpm, info.get("tpm")),
                max_parallel_requests=_first(lp.max_parallel_requests,
                                             info.get("max_parallel_requests")),
                weight=lp.weight,
                mock_response=lp.mock_response,
                extra_headers=MappingProxyType(dict(lp.extra_headers or {})),
                defaults=MappingProxyType(lp.request_defaults()),
                params=MappingProxyType({**params, "organization": org} if org else params),
                model_info=MappingProxyType(info),
                wildcard="*" in entry.model_name,
                env=env,
            )
        )
    return out


def build_deployments(config: Config) -> list[Deployment]:
    """Every deployment the config serves in the current environment."""
    environment = config.env.get("LANEWAY_ENVIRONMENT") or config.env.get("LITELLM_ENVIRONMENT")
    # One read-only copy for every deployment: `environment_variables` reach the adapters
    # exactly like the process environment does (which wins where both set a name).
    env = config.env if isinstance(config.env, MappingProxyType) else MappingProxyType(
        dict(config.env))
    out: list[Deployment] = []
    for entry in config.model_list:
        allowed = entry.model_info.supported_environments if entry.model_info else None
        if environment and allowed is not None and environment not in allowed:
            continue
        out.extend(_deployments_of(entry, env))
    return out


class ModelGroups:
    """Resolves a client's model name to a group: exact name, alias, then wildcard patterns.

    A wildcard entry is one group named by its pattern (`*`, `openai/*`): every name it
    matches waits in that group's line and shares its deployments' limits, and the requested
    name only chooses the upstream model id.
    """

    def __init__(self, deployments: Iterable[Deployment], aliases: Mapping[str, Any] | None = None):
        exact: dict[str, list[Deployment]] = {}
        patterns: dict[str, list[Deployment]] = {}
        for d in deployments:
            (patterns if d.wildcard else exact).setdefault(d.model_name, []).append(d)
        self._groups = {name: Group.of(name, ds) for name, ds in exact.items()}
        # More specific patterns first: "openai/*" before "*".
        self._patterns = sorted(
            ((p, Group.of(p, ds)) for p, ds in patterns.items()),
            key=lambda kv: -len(kv[0].replace("*", "")))
        self._aliases: dict[str, tuple[str, bool]] = {}
        for alias, target in (aliases or {}).items():
            if isinstance(target, Mapping):
                self._aliases[alias] = (str(target["model"]), bool(target.get("hidden", False)))
            else:
                self._aliases[alias] = (str(target), False)
        # Requested name → its group of concrete deployments; bounded (cleared when full), as
        # any number of distinct names may arrive.
        self._wildcard_groups: dict[str, Group] = {}

    def names(self) -> list[str]:
        """The model names /models lists: groups and visible aliases."""
        visible = [a for a, (_, hidden) in self._aliases.items() if not hidden]
        return [*self._groups, *(a for a in visible if a not in self._groups)]

    def all_groups(self) -> list[Group]:
        """Every line: the named groups, then one per wildcard pattern (its templates)."""
        return [*self._groups.values(), *(g for _, g in self._patterns)]

    def all_deployments(self) -> list[Deployment]:
        out = [d for g in self._groups.values() for d in g.deployments]
        out.extend(d for _, g in self._patterns for d in g.deployments)
        return out

    def get(self, name: str) -> Group | None:
        group = self._groups.get(name)
        if group is not None:
            return group
        alias = self._aliases.get(name)
        if alias is not None:
            return self._groups.get(alias[0]) or self._from_pattern(alias[0])
        return self._from_pattern(name)

    def resolve(self, name: str, callable_names: Callable[[], list[str]] | None = None) -> Group:
        """The group serving `name`, else a 404 that lists the models the caller may call
        (`callable_names`, every model by default): never those of other keys."""
        group = self.get(name)
        if group is None:
            names = self.names() if callable_names is None else callable_names()
            available = ", ".join(sorted(names)) or "(none)"
            raise NotFound(
                f"The model `{echoed(name)}` does not exist or is not served here. "
                f"Available models: {available}",
                param="model",
            )
        return group

    def _from_pattern(self, name: str) -> Group | None:
        cached = self._wildcard_groups.get(name)
        if cached is not None:
            return cached
        for pattern, templates in self._patterns:
            if fnmatch.fnmatchcase(name, pattern):
                group = Group.of(pattern, (_concrete(t, pattern, name)
                                           for t in templates.deployments))
                if len(self._wildcard_groups) >= _WILDCARD_CACHE_SIZE:
                    self._wildcard_groups.clear()
                self._wildcard_groups[name] = group
                return group
        return None


def _concrete(template: Deployment, pattern: str, requested: str) -> Deployment:
    """The deployment a wildcard entry becomes for one requested model name.

    Only the upstream model id comes from the request: provider, base URL, key and limits are
    the template's, and so is the id, so that every name shares the template's counters.
    """
    # "openai/*" requested as "openai/gpt-4o" serves "gpt-4o"; "*" passes the whole name
    # through, prefix and all ("groq/x" is sent to the template's upstream as model "groq/x").
    prefix = pattern.split("*", 1)[0]
    tail = requested[len(prefix):] if requested.startswith(prefix) else requested
    model, requested_model = template.model, False
    if model == "*" or model.endswith("*"):
        model, requested_model = model[:-1] + tail, True
    return replace(template, model_name=requested, model=model, wildcard=False,
                   requested_model=requested_model)


def _counter_of(d: Deployment) -> TokenCounter:
    from router.tokens import counter_for

    return counter_for(str(d.model_info.get("base_model") or d.model),
                       d.model_info.get("custom_tokenizer"))


_counters = PerDeployment(_counter_of, per_model=True)  # on every request with a tpm limit
