"""Certificates for serving the simulated cluster over HTTPS on loopback.

A throwaway certificate authority signs the serving certificate that the API server and every
kubelet present, as a cluster CA signs a real API server's and kubelets' certificates; clients
trust it through the kubeconfig's ``certificate-authority-data`` (or a CA file). The keys are
made with the ``openssl`` command (Debian package ``openssl``) so that no Python package is
needed for it, and are EC P-256 because those take milliseconds to generate.
"""

from __future__ import annotations

import shutil
import ssl
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from ipaddress import ip_address
from pathlib import Path

from simulator.errors import SimulatorError

__all__ = ["LOOPBACK_HOSTS", "CertificateAuthority", "ServingCertificate", "TlsError", "new_ca"]

LOOPBACK_HOSTS = ("127.0.0.1", "localhost")
_CURVE = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256")


class TlsError(SimulatorError):
    """Certificates could not be made (no openssl, or it failed)."""


def _openssl(args: Sequence[str], cwd: Path) -> None:
    binary = shutil.which("openssl")
    if binary is None:
        raise TlsError("serving TLS needs the openssl command (Debian package openssl)")
    result = subprocess.run(
        [binary, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    if result.returncode != 0:
        raise TlsError(f"openssl {args[0]} failed: {result.stderr.strip()[:500]}")


def _subject_alt_names(hosts: Sequence[str]) -> str:
    names = []
    for host in hosts:
        try:
            ip_address(host)
        except ValueError:
            names.append(f"DNS:{host}")
        else:
            names.append(f"IP:{host}")
    return ",".join(names)


@dataclass(frozen=True)
class ServingCertificate:
    """A server's certificate chain and key (PEM), and the CA that signed it."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes

    def server_context(self) -> ssl.SSLContext:
        """An SSL context for a listening socket that presents this certificate."""
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        # load_cert_chain only reads files; the key lives on disk just long enough for that.
        with tempfile.TemporaryDirectory(prefix="foresight-tls-") as tmp:
            cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
            cert.write_bytes(self.cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)
        return context


@dataclass(frozen=True)
class CertificateAuthority:
    """A self-signed CA that issues serving certificates."""

    cert_pem: bytes
    key_pem: bytes

    def issue(
        self, hosts: Sequence[str] = LOOPBACK_HOSTS, common_name: str = "foresight-simulator"
    ) -> ServingCertificate:
        """A serving certificate valid for ``hosts`` (IP addresses or DNS names)."""
        if not hosts:
            raise ValueError("a serving certificate needs at least one host")
        with tempfile.TemporaryDirectory(prefix="foresight-tls-") as tmp:
            work = Path(tmp)
            (work / "ca.crt").write_bytes(self.cert_pem)
            (work / "ca.key").touch(mode=0o600)
            (work / "ca.key").write_bytes(self.key_pem)
            (work / "ext.cnf").write_text(
                f"subjectAltName={_subject_alt_names(hosts)}\n"
                "basicConstraints=critical,CA:FALSE\n"
                "keyUsage=critical,digitalSignature,keyEncipherment\n"
                "extendedKeyUsage=serverAuth\n"
                "subjectKeyIdentifier=hash\n"
                "authorityKeyIdentifier=keyid,issuer\n"
            )
            _openssl(
                [
                    *("req", "-new", "-nodes", *_CURVE, "-keyout", "tls.key"),
                    *("-out", "tls.csr", "-subj", f"/CN={common_name}"),
                ],
                work,
            )
            _openssl(
                [
                    *("x509", "-req", "-in", "tls.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
                    *("-CAcreateserial", "-days", "365", "-sha256", "-extfile", "ext.cnf"),
                    *("-out", "tls.crt"),
                ],
                work,
            )
            return ServingCertificate(
                (work / "tls.crt").read_bytes(), (work / "tls.key").read_bytes(), self.cert_pem
            )


def new_ca(common_name: str = "foresight-simulator-ca") -> CertificateAuthority:
    """A fresh CA, valid for a year."""
    with tempfile.TemporaryDirectory(prefix="foresight-tls-") as tmp:
        work = Path(tmp)
        _openssl(
            [
                *("req", "-x509", "-new", "-nodes", *_CURVE, "-keyout", "ca.key"),
                *("-out", "ca.crt", "-days", "365", "-sha256", "-subj", f"/CN={common_name}"),
                *("-addext", "basicConstraints=critical,CA:TRUE"),
                *("-addext", "keyUsage=critical,keyCertSign,cRLSign"),
            ],
            work,
        )
        return CertificateAuthority((work / "ca.crt").read_bytes(), (work / "ca.key").read_bytes())
