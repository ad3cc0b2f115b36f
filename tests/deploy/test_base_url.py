"""The model engine API URL: malformed ones are one clear error that echoes none of them."""

from __future__ import annotations

import pytest

from migrate.deploy.client import ApiError, normalise_base_url


@pytest.mark.parametrize(
    "url", ["http://[::1/x", "http://host:abc/", "http://host:99999/", "ht tp://x", "host:8080"]
)
def test_a_malformed_api_url_is_an_api_error(url: str) -> None:
    with pytest.raises(ApiError, match=r"must be http\(s\)://host\[:port\]\[/prefix\]$"):
        normalise_base_url(url)


def test_a_good_url_keeps_its_prefix() -> None:
    assert normalise_base_url(" https://me.example:8443/api/v1/ ") == "https://me.example:8443/api"
