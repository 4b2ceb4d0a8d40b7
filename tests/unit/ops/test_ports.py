"""``relay up``'s port preflight: a listening socket makes a port busy, lingering connections
of a server that just stopped (TIME_WAIT) do not."""

from __future__ import annotations

import socket

from relay_cli.embedded_redis import port_free


def test_a_listening_port_is_busy() -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        assert not port_free(server.getsockname()[1])


def test_a_port_whose_server_just_stopped_is_free_despite_time_wait() -> None:
    server = socket.socket()
    # As uvicorn and Redis do; the connections it accepts (and their TIME_WAIT) inherit it.
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen()
    port = server.getsockname()[1]
    client = socket.create_connection(("127.0.0.1", port))
    accepted, _ = server.accept()
    accepted.close()  # the server side closes first: its end lingers in TIME_WAIT
    client.recv(1)
    client.close()
    server.close()
    plain = socket.socket()
    try:  # without SO_REUSEADDR the port still looks taken ...
        plain.bind(("127.0.0.1", port))
        lingering = False
    except OSError:
        lingering = True
    finally:
        plain.close()
    assert lingering
    assert port_free(port)  # ... but a server (which sets SO_REUSEADDR) can listen on it
