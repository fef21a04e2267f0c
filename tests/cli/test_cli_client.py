"""The HTTP side of `CinderClient`: one keep-alive connection, reconnects, timeouts."""

from __future__ import annotations

import json
import socket
import ssl

import pytest

from ashbox.cli.client import ApiError, CinderClient, ServerUnreachable
from ashbox.cli.exit_codes import ExitCode
from tests.certs import self_signed

from .fake_cinder import Answer, FakeCinder, Run, in_chunks, served


def test_the_calls_of_a_command_share_its_connections(fake):
    fake.add_volume("v1")
    fake.next_timeline = [{}, {"status": "available"}]
    assert Run("backup", "create", "v1", "--wait").code == ExitCode.OK
    find, create, *polls = fake.requests  # then two polls
    assert (find.method, create.method, len(polls)) == ("GET", "POST", 2)
    # A POST goes on a connection of its own, never on one that may be closing;
    # the polls keep it.
    assert find.client_port != create.client_port
    assert {p.client_port for p in polls} == {create.client_port}


def test_a_connection_the_server_closed_after_an_answer_is_made_again(fake):
    fake.drop_connections = True
    fake.add_volume("v1")
    client = CinderClient(fake.url)
    try:
        assert client.list_volumes() == client.list_volumes()
    finally:
        client.close()
    first, second = fake.requests
    assert first.client_port != second.client_port


def test_a_command_works_when_every_connection_is_dropped_after_an_answer(fake):
    fake.drop_connections = True
    fake.add_volume("v1")
    fake.next_timeline = [{}, {"status": "available"}]
    run = Run("backup", "create", "v1", "--wait", "-f", "json")
    assert run.code == ExitCode.OK, run.err
    assert run.json()["status"] == "available"
    assert len({r.client_port for r in fake.requests}) == len(fake.requests)


def test_a_get_whose_connection_breaks_is_sent_again_once(fake):
    fake.add_volume("v1")
    client = CinderClient(fake.url)
    try:
        client.list_volumes()
        fake.unanswered = {"GET"}
        with pytest.raises(ServerUnreachable):
            client.list_volumes()
    finally:
        client.close()
    assert [r.method for r in fake.requests] == ["GET", "GET", "GET"]


def test_a_post_whose_connection_breaks_is_not_sent_again(fake):
    volume = fake.add_volume("v1")
    client = CinderClient(fake.url)
    try:
        client.list_volumes()  # the POST goes on the kept connection
        fake.unanswered = {"POST"}
        with pytest.raises(ServerUnreachable):
            client.create_backup(volume["id"])
    finally:
        client.close()
    assert [r.method for r in fake.requests] == ["GET", "POST"]


def test_chunked_answers_are_decoded_and_leave_the_connection_ready_for_the_next(fake):
    fake.framing = "chunked"
    fake.add_volume("v1")
    fake.next_timeline = [{}, {"status": "available"}]
    run = Run("backup", "create", "v1", "--wait", "-f", "json")
    assert run.code == ExitCode.OK, run.err
    assert run.json()["status"] == "available"
    _, create, *polls = fake.requests
    assert len(polls) == 2
    assert {p.client_port for p in polls} == {create.client_port}


def test_an_answer_without_a_length_is_read_until_the_service_closes(fake):
    fake.framing = "close"
    fake.add_volume("v1")
    client = CinderClient(fake.url)
    try:
        assert [v["name"] for v in client.list_volumes()] == ["v1"]
        assert [v["name"] for v in client.list_volumes()] == ["v1"]
    finally:
        client.close()
    assert len(fake.requests) == 2


@pytest.mark.parametrize(
    "framing",
    [b"content-LENGTH: %d\r\n", b"TRANSFER-encoding: Chunked\r\ncontent-length: %d\r\n"],
)
def test_header_names_are_matched_whatever_their_case(fake, framing):
    volume = fake.add_volume("v1")
    body = json.dumps({"volume": volume}).encode()
    head = b"HTTP/1.1 200 OK\r\n" + framing % len(body) + b"x-ASHBOX-wait: 1\r\n\r\n"
    chunked = b"chunked" in framing.lower()  # chunked wins over a length
    raw = head + (in_chunks(body) if chunked else body)
    fake.answer("GET", f"/v3/volumes/{volume['id']}", Answer(200, raw=raw))
    client = CinderClient(fake.url)
    try:
        assert client.wait_volume(volume["id"], 1.0) == (volume, True)
    finally:
        client.close()


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"HTTP/1.1 OK\r\n\r\n", "malformed status line b'HTTP/1.1 OK\\r\\n'"),
        (b"ICY 200 OK\r\n\r\n", "malformed status line"),
        (b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n", "malformed header b'no colon\\r\\n'"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}", "ended after 2 of its 10 bytes"),
        (b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n{}", "malformed Content-Length"),
        (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0x2\r\n{}", "chunk size"),
        (b"HTTP/1.1 200 OK\r\nContent-Type: appl", "the answer ended early"),
    ],
)
def test_a_malformed_answer_is_an_unreachable_service_and_not_asked_again(fake, raw, reason):
    fake.answer("GET", "/v3/volumes/detail", Answer(200, raw=raw))
    client = CinderClient(fake.url)
    with pytest.raises(ServerUnreachable) as caught:
        client.list_volumes()
    client.close()
    assert reason in caught.value.message
    assert len(fake.requests) == 1


def test_a_service_that_does_not_answer_in_time_is_unreachable():
    with socket.socket() as silent:  # accepts connections in its backlog, never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        client = CinderClient(url, timeout=0.1)
        with pytest.raises(ServerUnreachable) as caught:
            client.list_backups()
        client.close()
    assert caught.value.message == f"cannot reach the ashbox service at {url}: timed out"


def test_the_path_of_the_url_prefixes_every_request(fake):
    client = CinderClient(fake.url + "/block-storage/")
    with pytest.raises(ApiError):  # the fake serves no such path
        client.list_volumes()
    client.close()
    assert fake.requests[0].path == "/block-storage/v3/volumes/detail"


def test_an_https_url_is_served_over_tls_checked_against_the_trusted_certificates(
    tmp_path, monkeypatch
):
    cert, key = self_signed(tmp_path)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)
    fake = FakeCinder()
    fake.add_volume("v1")
    with served(fake, tls) as url:
        assert url.startswith("https://")
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        assert Run("--url", url, "volume", "show", "v1").code == ExitCode.OK
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "none.pem"))
        untrusted = Run("--url", url, "volume", "show", "v1")
    assert untrusted.code == ExitCode.UNREACHABLE
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.err
