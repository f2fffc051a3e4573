"""The peek that tells the Django backend a request's client left, on real sockets."""

from __future__ import annotations

import socket

from backends.django_service.mlapi.client_socket import client_gone


def test_a_connected_client_is_there_and_its_next_request_is_left_unread() -> None:
    server, client = socket.socketpair()
    with server, client:
        assert not client_gone(server)  # connected, nothing sent: no wait either
        client.sendall(b"GET /next HTTP/1.1\r\n")
        assert not client_gone(server)
        assert server.recv(100) == b"GET /next HTTP/1.1\r\n"  # the peek consumed nothing


def test_a_client_that_hung_up_or_reset_is_gone() -> None:
    server, client = socket.socketpair()
    with server:
        client.close()
        assert client_gone(server)
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        peer = socket.create_connection(listener.getsockname())
        accepted, _ = listener.accept()
        with accepted:
            peer.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
            )
            peer.close()  # linger 0: a reset, not an orderly close
            assert client_gone(accepted)
