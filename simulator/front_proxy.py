"""The front proxy's client certificate: what kube-apiserver presents to aggregated API servers.

kube-apiserver calls an aggregated API (an ``APIService`` backed by a Service) with a client
certificate (``--proxy-client-cert-file``) signed by the request-header CA
(``--requestheader-client-ca-file``), and names the user it authenticated in
``X-Remote-User`` / ``X-Remote-Group`` headers; the aggregated server believes those headers
only on a connection with such a certificate. :func:`new_front_proxy` makes a CA and a client
certificate for the simulator to do the same.
"""

from __future__ import annotations

import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from simulator.tls import _CURVE, CertificateAuthority, _openssl, new_ca

__all__ = ["FRONT_PROXY_CN", "FrontProxy", "client_certificate", "new_front_proxy"]

FRONT_PROXY_CN = "front-proxy-client"


@dataclass(frozen=True)
class FrontProxy:
    """A client certificate and key (PEM), and the CA (PEM) aggregated servers trust it by."""

    cert_pem: bytes
    key_pem: bytes
    ca_pem: bytes
    common_name: str = FRONT_PROXY_CN

    def load_into(self, context: ssl.SSLContext) -> None:
        """Present this certificate on the client connections of ``context``."""
        # load_cert_chain only reads files; the key lives on disk just long enough for that.
        with tempfile.TemporaryDirectory(prefix="foresight-tls-") as tmp:
            cert, key = Path(tmp) / "client.crt", Path(tmp) / "client.key"
            cert.write_bytes(self.cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(self.key_pem)
            context.load_cert_chain(cert, key)


def client_certificate(ca: CertificateAuthority, common_name: str) -> FrontProxy:
    """A client-authentication certificate for ``common_name`` signed by ``ca``."""
    with tempfile.TemporaryDirectory(prefix="foresight-tls-") as tmp:
        work = Path(tmp)
        (work / "ca.crt").write_bytes(ca.cert_pem)
        (work / "ca.key").touch(mode=0o600)
        (work / "ca.key").write_bytes(ca.key_pem)
        (work / "ext.cnf").write_text(
            "basicConstraints=critical,CA:FALSE\n"
            "keyUsage=critical,digitalSignature,keyEncipherment\n"
            "extendedKeyUsage=clientAuth\n"
        )
        _openssl(
            [
                *("req", "-new", "-nodes", *_CURVE, "-keyout", "client.key"),
                *("-out", "client.csr", "-subj", f"/CN={common_name}"),
            ],
            work,
        )
        _openssl(
            [
                *("x509", "-req", "-in", "client.csr", "-CA", "ca.crt", "-CAkey", "ca.key"),
                *("-CAcreateserial", "-days", "365", "-sha256", "-extfile", "ext.cnf"),
                *("-out", "client.crt"),
            ],
            work,
        )
        return FrontProxy(
            (work / "client.crt").read_bytes(),
            (work / "client.key").read_bytes(),
            ca.cert_pem,
            common_name,
        )


def new_front_proxy(common_name: str = FRONT_PROXY_CN) -> FrontProxy:
    """A fresh request-header CA and its front-proxy client certificate."""
    return client_certificate(new_ca("foresight-simulator-front-proxy-ca"), common_name)
