"""Corporate TLS: a gateway whose certificate is signed by a private CA. fourk trusts it when
`SSL_CERT_FILE` names the CA's PEM (read through the system trust store's loader), and fails
with a network error naming the certificate problem when it does not."""

import asyncio
import datetime
import ipaddress
import os
import ssl
import subprocess
import threading

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fourk_procs import emulator, fourk_binary


def make_ca_and_cert(tmp):
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fourk test corporate CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem = tmp / "ca.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem = tmp / "cert.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem = tmp / "key.pem"
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return ca_pem, cert_pem, key_pem


class TlsProxy:
    """TLS on 127.0.0.1 (port 0) in front of a plain HTTP server, byte for byte."""

    def __init__(self, cert, key, upstream_port):
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(cert, key)
        self.upstream_port = upstream_port
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    async def _pipe(self, reader, writer):
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()

    async def _handle(self, reader, writer):
        up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        await asyncio.gather(self._pipe(reader, up_w), self._pipe(up_r, writer))

    def _run(self):
        asyncio.set_event_loop(self.loop)
        server = self.loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, ssl=self.ctx)
        )
        self.port = server.sockets[0].getsockname()[1]
        self.ready.set()
        self.loop.run_forever()

    def __enter__(self):
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc):
        self.loop.call_soon_threadsafe(self.loop.stop)


def run_fourk(tmp, url, extra_env):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_", "GEMINI_", "SSL_CERT"))}
    env.update({"OPENAI_API_KEY": "sk-tls", "FOURK_LEDGER": str(tmp / "ledger.db"), **extra_env})
    return subprocess.run(
        [fourk_binary(), "generate", "a fox", "--size", "1024x1024", "--quality", "low",
         "--base-url", url, "--out", str(tmp / "fox.png"), "--retries", "0"],
        env=env, capture_output=True, text=True, timeout=120,
    )


def test_a_gateway_behind_a_private_ca(tmp_path):
    ca, cert, key = make_ca_and_cert(tmp_path)
    with emulator() as base:
        port = int(base.rsplit(":", 1)[1].split("/")[0])
        with TlsProxy(str(cert), str(key), port) as proxy:
            url = f"https://127.0.0.1:{proxy.port}/v1"
            untrusted = run_fourk(tmp_path, url, {})
            assert untrusted.returncode == 4, untrusted.stderr
            assert "certificate" in untrusted.stderr.lower(), untrusted.stderr
            assert not (tmp_path / "fox.png").exists()
            trusted = run_fourk(tmp_path, url, {"SSL_CERT_FILE": str(ca)})
            assert trusted.returncode == 0, trusted.stderr
            assert (tmp_path / "fox.png").exists()
