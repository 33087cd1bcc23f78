"""Azurite, the Azure Storage emulator, as a process on 127.0.0.1 with a temp folder (blob service only).

It is the npm package `azurite`, installed into the repo's node_modules by `npm ci` (package.json).
The tests talk to it with the same azure-storage-blob code path that serves real Azure.
"""

from __future__ import annotations

import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
from collector_process import free_port

REPO = Path(__file__).resolve().parents[2]
BINARY = REPO / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"
# The well-known development account key, the same in every Azurite: not a secret.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="


class Azurite:
    def __init__(self, location: Path, port: int | None = None):
        self.location = Path(location)
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}/{ACCOUNT}"
        self.connection_string = (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};BlobEndpoint={self.endpoint};"
        )
        self.process: subprocess.Popen | None = None

    def start(self, timeout: float = 30.0) -> Azurite:
        if not BINARY.exists():
            raise RuntimeError(f"{BINARY} is missing: run `npm ci` in {REPO} (package.json installs azurite)")
        self.log = open(self.location / "azurite.log", "ab")
        self.process = subprocess.Popen(
            [str(BINARY), "--blobHost", "127.0.0.1", "--blobPort", str(self.port), "--location", str(self.location),
             "--skipApiVersionCheck", "--loose", "--silent"],
            stdout=self.log, stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"azurite exited: {(self.location / 'azurite.log').read_text()[-2000:]}")
            try:
                httpx.get(f"{self.endpoint}?comp=list", timeout=1)
                return self
            except httpx.TransportError:
                time.sleep(0.1)
        raise RuntimeError("azurite did not start")

    def stop(self) -> None:
        """Its temp folder is thrown away, so no clean shutdown is needed (that waits for keep-alive clients)."""
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()

    def service(self):
        from azure.storage.blob import BlobServiceClient

        return BlobServiceClient.from_connection_string(self.connection_string)

    def create_container(self, name: str) -> None:
        self.service().create_container(name)

    def sas_url(self, container: str, permission: str = "racwdl") -> str:
        """A container SAS URL, as the Azure portal would give one."""
        from azure.storage.blob import generate_container_sas

        token = generate_container_sas(ACCOUNT, container, account_key=ACCOUNT_KEY, permission=permission,
                                       expiry=datetime.now(UTC) + timedelta(hours=2))
        return f"{self.endpoint}/{container}?{token}"

    def blobs(self, container: str) -> dict[str, bytes]:
        client = self.service().get_container_client(container)
        return {blob.name: client.download_blob(blob.name).readall() for blob in client.list_blobs()}
