"""Where a company's Basic-auth credentials may go.

A company's credentials are for its own servers, yet the URLs fetched with them come from its CSV, which may
name any host. So the credentials are scoped:

* they are sent only to the origin (scheme, host, port) of the company's CSV URL and to the origins the
  company explicitly lists for its transcripts (an http origin also covers the https origin of the same host,
  the upgrade a server may redirect to);
* never over plain http, unless the company allows it: a fetch that would send them over http is refused,
  rather than made without them, so the operator sees why;
* never across a redirect to another origin (the fetcher drops them for the rest of the chain).

A request to any other origin goes without them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import httpx

from pipeline.errors import PermanentError

__all__ = ["Credentials", "CredentialsOverHttp", "normalize_origin", "origin_of"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class CredentialsOverHttp(PermanentError):
    """A fetch would send the company's credentials over plain http, which the company does not allow."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        super().__init__(origin)

    def __str__(self) -> str:
        return (
            f"the company's credentials are not sent over plain http (to {self.origin}): "
            "use an https URL, or allow http for the company (livedash companies update --allow-http)"
        )


def origin_of(url: str | httpx.URL) -> str:
    """``scheme://host[:port]`` of ``url``, without a default port; raises ``ValueError`` if it is no URL."""
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL:
        raise ValueError("malformed URL") from None
    host = parsed.raw_host.decode("ascii").lower()
    if ":" in host:
        host = f"[{host}]"
    if parsed.port is None or parsed.port == _DEFAULT_PORTS.get(parsed.scheme):
        return f"{parsed.scheme}://{host}"
    return f"{parsed.scheme}://{host}:{parsed.port}"


def normalize_origin(text: str) -> str:
    """Check an origin given by an operator (``https://cdn.example.com[:port]``) and return it normalised.

    Raises:
      ValueError: When it is not an http(s) origin: another scheme, no host, a path, a query, user info.
    """
    text = text.strip().rstrip("/")
    try:
        parsed = httpx.URL(text)
    except httpx.InvalidURL:
        raise ValueError("not an origin such as https://cdn.example.com") from None
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.raw_host:
        raise ValueError(f"{text!r} is not an http(s) origin such as https://cdn.example.com")
    if parsed.userinfo:
        raise ValueError("an origin must not hold user info: give credentials with --username/--password")
    if parsed.raw_path not in (b"", b"/") or parsed.fragment:
        raise ValueError(f"{text!r} is not an origin: no path, query or fragment, only scheme, host and port")
    return origin_of(parsed)


@dataclass(frozen=True, slots=True)
class Credentials:
    """A company's Basic-auth credentials and where they may be sent.

    Attributes:
      username(str): The user.
      password(str): The password in clear; left out of ``repr``.
      origins(frozenset[str]): Normalised origins (:func:`origin_of`) the credentials may be sent to.
      allow_http(bool): Whether they may travel over plain http.
    """

    username: str
    password: str = field(repr=False)
    origins: frozenset[str]
    allow_http: bool = False

    @classmethod
    def scoped(
        cls,
        source_url: str,
        username: str | None,
        password: str | None,
        *,
        extra_origins: Iterable[str] = (),
        allow_http: bool = False,
    ) -> Credentials | None:
        """Credentials for the origins of ``source_url`` and ``extra_origins``; ``None`` without both."""
        if not (username and password):
            return None
        origins = {origin_of(source_url), *(normalize_origin(origin) for origin in extra_origins)}
        upgrades = {"https://" + origin[len("http://") :] for origin in origins if _default_http(origin)}
        return cls(username, password, frozenset(origins | upgrades), allow_http)

    def auth_for(self, url: httpx.URL) -> httpx.BasicAuth | None:
        """Basic auth for a request to ``url``, or ``None`` when its origin is not one of the company's.

        Raises:
          CredentialsOverHttp: When ``url`` is one of the origins, over http, and http is not allowed.
        """
        origin = origin_of(url)
        if origin not in self.origins:
            return None
        if url.scheme != "https" and not self.allow_http:
            raise CredentialsOverHttp(origin)
        return httpx.BasicAuth(self.username, self.password)


def _default_http(origin: str) -> bool:
    """An http origin on the default port, whose https upgrade is the same host on 443."""
    return origin.startswith("http://") and ":" not in origin.removeprefix("http://").rsplit("]", 1)[-1]
