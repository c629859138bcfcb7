"""Client authentication, as CDS Hooks 2.0 describes it ("Trusting CDS Clients").

A CDS client signs a short-lived JWT and sends it as ``Authorization: Bearer <jwt>``. The
service trusts only the issuers it is configured with; for each it knows where the keys are:

``SCIATICA_CDS_ISSUERS`` (or ``make cds ISSUERS=...``, ``--issuers``) names a JSON file, or holds
the JSON itself, mapping each trusted ``iss`` to one of::

    {"jwks_url": "https://ehr.example.org/.well-known/jwks.json"}   # fetched, cached by kid
    {"jwks": {"keys": [...]}}                                        # a JWK Set, inline
    {"public_key": "-----BEGIN PUBLIC KEY-----..."}                  # one PEM key
    {"secret": "a shared key"}                                       # HMAC (HS256/384/512)

Each call must then carry a JWT signed by a trusted issuer's key with ``iss``, ``aud`` (the URL
of the endpoint called, as discovery lists it: ``<public URL>/cds-services/<id>``), ``exp``,
``iat`` and ``jti``; a ``jti`` is accepted once until its token expires (replay protection). A
call without a valid token gets 401 with an OperationOutcome. Signatures are checked by PyJWT;
the algorithm is never taken from the token alone: asymmetric keys allow ES256/384/512,
RS256/384/512 and PS256/384/512 (the spec requires ES384 and RS384), shared keys HS256/384/512.

With no issuer configured, the service is open: it accepts calls from loopback addresses only
and says so when it starts.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from ipaddress import ip_address
from pathlib import Path
from typing import Any, NoReturn

import jwt

from serve.cds.errors import Issue, ServiceError

__all__ = [
    "ASYMMETRIC_ALGORITHMS",
    "HMAC_ALGORITHMS",
    "ClientAuth",
    "TrustedIssuer",
    "load_issuers",
]

ASYMMETRIC_ALGORITHMS = ("ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384")
HMAC_ALGORITHMS = ("HS256", "HS384", "HS512")
REQUIRED_CLAIMS = ("iss", "aud", "exp", "iat", "jti")
LEEWAY_SECONDS = 30
"""Clock skew allowed between client and service for ``exp`` and ``iat``."""


class ConfigError(ValueError):
    """The trusted-issuer setting is malformed (the message names the issuer and the key)."""


@dataclass
class TrustedIssuer:
    """One trusted issuer and where its keys are.

    Attributes
    ----------
    iss : str
        The issuer, exactly as in the tokens' ``iss`` claim.
    jwks_url : str or None
        A JWK Set URL (fetched and cached by PyJWT's ``PyJWKClient``).
    jwks : dict or None
        A JWK Set given inline.
    public_key : str or None
        One PEM public key.
    secret : str or None
        A shared HMAC key.
    """

    iss: str
    jwks_url: str | None = None
    jwks: dict[str, Any] | None = None
    public_key: str | None = None
    secret: str | None = None
    _client: Any = field(default=None, repr=False)

    def key_for(self, token: str) -> tuple[Any, tuple[str, ...]]:
        """The key that verifies ``token`` and the algorithms allowed with it."""
        if self.secret is not None:
            return self.secret, HMAC_ALGORITHMS
        if self.public_key is not None:
            return self.public_key, ASYMMETRIC_ALGORITHMS
        kid = jwt.get_unverified_header(token).get("kid")
        if self.jwks is not None:
            keys = jwt.PyJWKSet.from_dict(self.jwks).keys
            chosen = [k for k in keys if kid is None or k.key_id == kid]
            if not chosen:
                raise jwt.InvalidTokenError(f"no key with kid {kid!r} in the issuer's JWK Set")
            return chosen[0].key, ASYMMETRIC_ALGORITHMS
        if self._client is None:
            self._client = jwt.PyJWKClient(str(self.jwks_url), cache_keys=True, timeout=5)
        return self._client.get_signing_key_from_jwt(token).key, ASYMMETRIC_ALGORITHMS


def load_issuers(setting: str | None) -> dict[str, TrustedIssuer]:
    """Read the trusted-issuer setting: a JSON file's path, or the JSON text itself.

    Raises
    ------
    ConfigError
        For a file that does not exist, bad JSON, or an issuer without exactly one key source.
    """
    if not setting or not setting.strip():
        return {}
    text = setting.strip()
    if not text.startswith("{"):
        path = Path(text)
        if not path.is_file():
            raise ConfigError(f"SCIATICA_CDS_ISSUERS: no such file {path.name!r}")
        text = path.read_text(encoding="utf-8")
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigError(f"SCIATICA_CDS_ISSUERS is not valid JSON ({error.msg})") from None
    if not isinstance(raw, Mapping):
        raise ConfigError("SCIATICA_CDS_ISSUERS must be a JSON object: issuer -> key source")
    sources = ("jwks_url", "jwks", "public_key", "secret")
    issuers = {}
    for iss, spec in raw.items():
        given = [k for k in sources if isinstance(spec, Mapping) and spec.get(k)]
        if len(given) != 1:
            raise ConfigError(
                f"SCIATICA_CDS_ISSUERS[{iss!r}] must give exactly one of {', '.join(sources)}"
            )
        issuers[iss] = TrustedIssuer(iss, **{given[0]: spec[given[0]]})
    return issuers


def _is_loopback(host: str | None) -> bool:
    try:
        return host is not None and ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


@dataclass
class ClientAuth:
    """Checks each call's client: a signed JWT from a trusted issuer, or loopback when open.

    Parameters
    ----------
    issuers : dict of str to TrustedIssuer
        Empty: the service is open to loopback clients.
    base_urls : tuple of str
        The service's own public base URLs (``http://127.0.0.1:5002``); a token's ``aud``
        must be one of them followed by the endpoint's path.
    """

    issuers: dict[str, TrustedIssuer]
    base_urls: tuple[str, ...]
    _seen: dict[tuple[str, str], float] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def open(self) -> bool:
        """No issuer is configured: calls from loopback need no token."""
        return not self.issuers

    def audiences(self, path: str) -> list[str]:
        """The ``aud`` values accepted for a call of ``path`` (feedback: the service's URL)."""
        paths = {path.rstrip("/")}
        if path.rstrip("/").endswith("/feedback"):
            paths.add(path.rstrip("/").removesuffix("/feedback"))
        return [base.rstrip("/") + p for base in self.base_urls for p in sorted(paths)]

    def check(self, authorization: str | None, path: str, client_host: str | None) -> None:
        """Accept the call or raise a 401 :class:`ServiceError` saying why.

        This may read a JWK Set over the network (for a ``jwks_url`` not cached yet): call it
        from a worker thread.
        """
        if self.open:
            if not _is_loopback(client_host):
                self._refuse("the service is open to loopback clients only")
            return
        if not authorization or not authorization.lower().startswith("bearer "):
            self._refuse("a signed JWT is required: Authorization: Bearer <jwt>")
        token = str(authorization)[7:].strip()
        try:
            unverified = jwt.decode(token, options={"verify_signature": False})
            iss = str(unverified.get("iss"))
            if iss not in self.issuers:
                self._refuse(f"issuer {iss!r} is not trusted")
            key, algorithms = self.issuers[iss].key_for(token)
            claims = jwt.decode(
                token,
                key,
                algorithms=list(algorithms),
                audience=self.audiences(path),
                issuer=iss,
                leeway=LEEWAY_SECONDS,
                options={"require": list(REQUIRED_CLAIMS)},
            )
        except jwt.InvalidAudienceError:
            self._refuse(f"the token's aud must be this endpoint's URL, {self.audiences(path)[0]}")
        except jwt.PyJWKClientError as error:
            self._refuse(f"the issuer's keys could not be read ({type(error).__name__})")
        except jwt.InvalidTokenError as error:
            self._refuse(f"invalid token: {error}")
        self._once(str(claims["iss"]), str(claims["jti"]), float(claims["exp"]))

    def _once(self, iss: str, jti: str, exp: float) -> None:
        now = time.time()
        with self._lock:
            for key in [k for k, until in self._seen.items() if until < now - LEEWAY_SECONDS]:
                del self._seen[key]
            if (iss, jti) in self._seen:
                self._refuse("token replayed: its jti was already used")
            self._seen[(iss, jti)] = exp

    @staticmethod
    def _refuse(reason: str) -> NoReturn:
        raise ServiceError(
            401,
            [Issue(reason, "Authorization", code="security")],
            headers={"WWW-Authenticate": 'Bearer realm="cds-services"'},
        )
