"""The gateway on a TLS listener: wss clients, an https push API, an https ws_uri."""

from __future__ import annotations

import json

import requests
from test_gateway import TOKEN, Backend, bearer, credential, http, run
from websockets.asyncio.client import connect

from tlsutil import write_server_files


def test_wss_clients_and_https_push(freescore, tmp_path):
    files = write_server_files(tmp_path / "tls")
    backend = Backend()
    try:
        fs = freescore(f"""
[[listen]]
endpoint = "tcp:0:interface=127.0.0.1"
certificate = "{files.certificate}"
private_key = "{files.private_key}"

[gateway]
api_uri = "{backend.url}"
push_token = "{TOKEN}"
""")
        cred = credential()

        async def main():
            async with connect(fs.url(0, "wss") + "/gateway", ssl=files.client_context(),
                               subprotocols=["Authorization", cred]) as ws:
                assert ws.subprotocol == "Authorization"
                hook = backend.connect_hook(cred)
                ws_uri = json.loads(hook.body)["ws_uri"]
                assert ws_uri == f"{fs.url(0)}/@connections/{hook.conn_id}"
                assert ws_uri.startswith("https://")
                r = await http("PUT", ws_uri, data=b"over tls", headers=bearer(), verify=str(files.ca_file))
                assert r.status_code == 200
                assert await ws.recv() == "over tls"
                await ws.send("back over tls")
                await http("GET", ws_uri, headers=bearer(), verify=str(files.ca_file))
            return hook.conn_id

        conn_id = run(main())
        hooks = backend.wait(lambda hs: [h for h in hs if h.conn_id == conn_id and h.method == "DELETE"], "DELETE")
        assert [h.method for h in backend.of(conn_id)] == ["POST", "PUT", "DELETE"]
        assert hooks
        r = requests.get(f"{fs.url(0)}/@connections/{conn_id}", headers=bearer(), verify=str(files.ca_file),
                         timeout=5)
        assert r.status_code == 410
    finally:
        backend.stop()
