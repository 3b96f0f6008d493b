import socket

import pytest

from desktop import offline


def test_outbound_connections_are_refused():
    assert offline.is_enforced()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s, pytest.raises(
        offline.NetworkBlocked
    ):
        s.connect(("93.184.216.34", 80))


def test_loopback_still_works():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        with socket.socket() as client:
            client.connect(server.getsockname())


def test_hub_libraries_are_told_to_stay_offline():
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert os.environ["TRANSFORMERS_OFFLINE"] == "1"
