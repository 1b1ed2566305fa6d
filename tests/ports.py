"""Free TCP ports for the servers tests start (a Ray head, an S3 server)."""

import socket


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
