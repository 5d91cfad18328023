"""Fuzzed bodies, paths and headers: every answer is a 2xx/4xx JSON document, never a 500."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlsplit

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from _broker_helpers import call

PATHS = ["/v1/grants", "/v1/grants/g-aaaaaaaa/approve", "/v1/grants/g-aaaaaaaa/deny",
         "/v1/grants/g-aaaaaaaa/revoke", "/v1/reveal", "/v1/audit", "/v1/audit/verify"]

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(
    [
        "traces",
        "refs",
        "categories",
        "reason",
        "duration_s",
        "break_glass",
        "trace",
        "ref",
        "lines",
        "x",
    ]
)
bodies = st.one_of(
    st.binary(max_size=300),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.dictionaries(field_names, json_values, max_size=6).map(lambda d: json.dumps(d).encode()),
)

FUZZ = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@FUZZ
@given(path=st.sampled_from(PATHS), body=bodies, method=st.sampled_from(["POST", "GET", "PUT"]))
def test_fuzzed_bodies_never_500(broker, path, body, method):
    status, headers, doc = call(broker["url"], method, path, body, token=broker["tokens"]["alice"])
    assert status < 500, (status, doc)
    assert headers["content-type"] == "application/json" and isinstance(doc, dict)
    if status >= 400:
        assert set(doc["error"]) == {"code", "message"}
        assert "Traceback" not in doc["error"]["message"]


@FUZZ
@given(
    path=st.text(alphabet=st.characters(min_codepoint=33, max_codepoint=126), max_size=60),
    auth=st.text(max_size=80).filter(lambda s: "\n" not in s and "\r" not in s),
)
def test_fuzzed_paths_and_tokens(broker, path, auth):
    try:
        status, _, doc = call(
            broker["url"],
            "GET",
            "/" + path,
            None,
            headers={"Authorization": auth.encode("latin-1", "replace").decode("latin-1")},
        )
    except UnicodeEncodeError:
        return
    assert status < 500 and isinstance(doc, dict)


def test_raw_garbage_and_lying_content_length(broker):
    parts = urlsplit(broker["url"])
    for raw in (
        b"GARBAGE\r\n\r\n",
        b"POST /v1/grants HTTP/1.1\r\nHost: x\r\nContent-Length: -5\r\n\r\n",
        b"POST /v1/grants HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999\r\n\r\n",
        b"POST /v1/grants HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ):
        with socket.create_connection((parts.hostname, parts.port), timeout=10) as s:
            s.sendall(
                raw.replace(
                    b"Host: x",
                    f"Host: x\r\nAuthorization: Bearer {broker['tokens']['alice']}".encode(),
                )
            )
            reply = s.recv(65536)
        status = int(reply.split(b" ", 2)[1])
        assert 400 <= status < 500, reply[:80]
