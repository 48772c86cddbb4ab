"""``heliohub serve`` run as its own process on 127.0.0.1 for the tests, and a TLS-intercepting HTTPS proxy that
hands the requests a client sends to an archive's host (csa.esac.esa.int) to that server instead: the field's
clients that cannot be given another URL are pointed at the platform through their environment (``HTTPS_PROXY``
and ``REQUESTS_CA_BUNDLE``), as an institution's proxy would, without changing their code."""

from __future__ import annotations

import datetime
import os
import socket
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import requests

from .hub_client import free_ports
from .store_helpers import ROOT


class Server:
    """``heliohub serve`` in its own process on 127.0.0.1."""

    def __init__(self, archive: dict, *options: str) -> None:
        (self.port,) = free_ports(1)
        self.url = f"http://127.0.0.1:{self.port}/hapi"
        self.log = Path(os.environ.get("TMPDIR", "/tmp")) / f"heliohub-serve-{self.port}.log"
        self._output = self.log.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "heliohub.cli", "serve", "--archive", archive["url"], "--port", str(self.port),
             *options], cwd=ROOT, env={**os.environ, **archive["environment"]}, stdout=self._output,
            stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{self.url}/capabilities", timeout=5).status_code == 200:
                    return
            except requests.ConnectionError:
                time.sleep(0.3)
            if self.process.poll() is not None:
                self.close()
                raise AssertionError(f"heliohub serve stopped: {self.log.read_text()}")
        self.close()
        raise AssertionError("heliohub serve did not answer within 120 s")

    def get(self, endpoint: str, **params: str) -> requests.Response:
        return requests.get(f"{self.url}/{endpoint}", params=params, timeout=60)

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self._output.close()


class InterceptingProxy:
    """An HTTPS proxy on 127.0.0.1 that answers ``CONNECT <host>:443`` for the given hosts only, with a
    certificate for that host signed by a certificate authority of its own (``ca_file``), and relays the
    decrypted bytes to ``127.0.0.1:<port>``. Any other request is refused: nothing leaves the machine."""

    def __init__(self, hosts: list[str], port: int, folder: Path) -> None:
        self.hosts, self.target = set(hosts), port
        self.ca_file = folder / "proxy-ca.pem"
        self.context = self._context(folder)
        self.refused: list[str] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _context(self, folder: Path) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "heliohub tests proxy CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
              .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(hours=1))
              .not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False, data_encipherment=False,
                                           key_agreement=False, encipher_only=False, decipher_only=False),
                             critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        leaf = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, sorted(self.hosts)[0])]))
                .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(h) for h in sorted(self.hosts)]),
                               critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .sign(ca_key, hashes.SHA256()))
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        chain, key_file = folder / "proxy-leaf.pem", folder / "proxy-leaf.key"
        chain.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(chain, key_file)
        return context

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            request = b""
            while b"\r\n\r\n" not in request and len(request) < 65536:
                chunk = client.recv(4096)
                if not chunk:
                    return
                request += chunk
            method, target = request.split(b" ", 2)[:2]
            host, _, port = target.decode().partition(":")
            if method != b"CONNECT" or host not in self.hosts or port != "443":
                self.refused.append(request.split(b"\r\n", 1)[0].decode())
                client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            with self.context.wrap_socket(client, server_side=True) as secure, \
                    socket.create_connection(("127.0.0.1", self.target)) as upstream:
                done = threading.Event()
                for source, sink in ((secure, upstream), (upstream, secure)):
                    threading.Thread(target=self._relay, args=(source, sink, done), daemon=True).start()
                done.wait(600)

    @staticmethod
    def _relay(source: socket.socket, sink: socket.socket, done: threading.Event) -> None:
        try:
            while chunk := source.recv(65536):
                sink.sendall(chunk)
        except OSError:
            pass
        done.set()

    def close(self) -> None:
        self.listener.close()
