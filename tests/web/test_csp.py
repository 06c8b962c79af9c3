"""The Content-Security-Policy admits map tiles only from the configured tile server."""

from smartprotect.web.security_headers import content_security_policy


def test_no_tile_server_means_only_our_own_origin():
    assert "img-src 'self' data:;" in content_security_policy(None)


def test_the_tile_server_is_allowed_for_images_only():
    policy = content_security_policy("https://tiles.example.org/{z}/{x}/{y}.png")
    assert "img-src 'self' data: https://tiles.example.org;" in policy
    # Scripts only from the site; WebAssembly compiled by them (Argon2id), no eval.
    assert "script-src 'self' 'wasm-unsafe-eval';" in policy
    assert "unsafe-eval'" not in policy.replace("'wasm-unsafe-eval'", "")
    wildcard = content_security_policy("https://{s}.tile.example.org/{z}/{x}/{y}.png")
    assert "https://*.tile.example.org" in wildcard
