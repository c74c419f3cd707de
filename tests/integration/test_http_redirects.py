"""Redirects are followed only within the origin asked for: checked with two loopback servers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests_support import Site

from ews.errors import FetchError
from ews.ingest.http import fetch_bytes, redirect_refusal

Start = Callable[[], tuple[str, type[Site]]]


@pytest.fixture
def site(sites: Start) -> Start:
    """``url, handler = site()``: a loopback server on a port of its own (a distinct origin)."""
    return sites


def no_sleep(_: float) -> None:
    return None


def test_a_redirect_within_the_origin_is_followed(site: Start) -> None:
    url, handler = site()
    handler.files["/new/rss.xml"] = b"<rss/>"
    handler.moved["/rss.xml"] = "/new/rss.xml"  # relative Location, as servers usually write it
    assert fetch_bytes(f"{url}/rss.xml", sleep=no_sleep) == b"<rss/>"
    assert handler.seen == ["/rss.xml", "/new/rss.xml"]


def test_a_redirect_to_another_port_is_refused_naming_both_urls_and_the_key(site: Start) -> None:
    mirror, mirror_site = site()
    other, other_site = site()
    other_site.files["/rss.xml"] = b"<rss>not from BMKG</rss>"
    mirror_site.moved["/rss.xml"] = f"{other}/rss.xml"
    port = other.rsplit(":", 1)[1]
    message = (
        rf"{mirror}/rss\.xml: the server redirected \(HTTP 302\) to {other}/rss\.xml; refused because it moves "
        rf"from port \d+ to port {port} of 127\.0\.0\.1\..*add '127\.0\.0\.1' to fetch\.allowed_redirect_hosts"
    )
    with pytest.raises(FetchError, match=message):
        fetch_bytes(f"{mirror}/rss.xml", retries=3, sleep=no_sleep)
    assert other_site.seen == []  # never contacted
    assert mirror_site.seen == ["/rss.xml"]  # and not retried: a refusal is permanent


def test_allowed_hosts_let_a_redirect_through(site: Start) -> None:
    mirror, mirror_site = site()
    other, other_site = site()
    other_site.files["/rss.xml"] = b"<rss/>"
    mirror_site.moved["/rss.xml"] = f"{other}/rss.xml"
    host_port = other.removeprefix("http://")
    assert fetch_bytes(f"{mirror}/rss.xml", allowed_hosts=[host_port], sleep=no_sleep) == b"<rss/>"
    assert fetch_bytes(f"{mirror}/rss.xml", allowed_hosts=["127.0.0.1"], sleep=no_sleep) == b"<rss/>"
    with pytest.raises(FetchError, match="refused"):
        fetch_bytes(f"{mirror}/rss.xml", allowed_hosts=["127.0.0.1:1"], sleep=no_sleep)


def test_every_hop_is_judged_against_the_url_asked_for(site: Start) -> None:
    mirror, mirror_site = site()
    second, second_site = site()
    third, third_site = site()
    mirror_site.moved["/a"] = "/b"
    mirror_site.moved["/b"] = f"{third}/c"  # second hop leaves the origin
    with pytest.raises(FetchError, match=rf"{mirror}/a: the server redirected \(HTTP 302\) to {third}/c; refused"):
        fetch_bytes(f"{mirror}/a", sleep=no_sleep)
    second_site.moved["/x"] = f"{third}/c"  # an allowed host cannot pass the fetch on to one that is not
    mirror_site.moved["/x"] = f"{second}/x"
    with pytest.raises(FetchError, match=rf"to {third}/c; refused"):
        fetch_bytes(f"{mirror}/x", allowed_hosts=[second.removeprefix("http://")], sleep=no_sleep)
    assert third_site.seen == []


def test_a_redirect_off_http_is_refused(site: Start) -> None:
    url, handler = site()
    handler.moved["/f"] = "file:///etc/passwd"
    handler.moved["/g"] = "ftp://127.0.0.1/x"
    with pytest.raises(FetchError, match=r"/f: HTTP 302 .*'file:///etc/passwd' is not allowed"):
        fetch_bytes(f"{url}/f", sleep=no_sleep)  # urllib refuses file: itself, before asking the handler
    with pytest.raises(FetchError, match=r"not an http\(s\) URL \(ftp\)"):
        fetch_bytes(f"{url}/g", allowed_hosts=["127.0.0.1"], sleep=no_sleep)


@pytest.mark.parametrize(
    ("start", "target", "allowed", "refused"),
    [
        ("http://www.bmkg.go.id/a", "https://www.bmkg.go.id/a", (), None),  # upgrade to https, same host
        ("http://www.bmkg.go.id:80/a", "https://WWW.BMKG.GO.ID:443/b", (), None),
        ("https://www.bmkg.go.id/a", "https://www.bmkg.go.id:443/b", (), None),
        ("https://www.bmkg.go.id/a", "http://www.bmkg.go.id/a", (), "it goes down from https to http"),
        ("http://h:8080/a", "https://h:8443/a", (), "it moves from port 8080 to port 8443 of h"),
        ("http://h:8080/a", "http://h:8081/a", (), "it moves from port 8080 to port 8081 of h"),
        ("https://www.bmkg.go.id/a", "https://bmkg.example.org/a", (), "leaves host www.bmkg.go.id"),
        ("http://127.0.0.1:8080/a", "http://localhost:8080/a", (), "leaves host 127.0.0.1 for host localhost"),
        ("https://www.bmkg.go.id/a", "https://Mirror.Example.org/a", ("mirror.example.org",), None),
        ("https://www.bmkg.go.id/a", "http://mirror.example.org/a", ("mirror.example.org",), None),
        ("https://www.bmkg.go.id/a", "https://mirror.example.org:8443/a", ("mirror.example.org:443",), "leaves"),
    ],
)
def test_redirect_rule(start: str, target: str, allowed: tuple[str, ...], refused: str | None) -> None:
    reason = redirect_refusal(start, target, allowed)
    if refused is None:
        assert reason is None
    else:
        assert reason is not None
        assert refused in reason
