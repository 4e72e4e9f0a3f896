"""
What the benchmark needs before it can measure: the load generator
(compiled from C{bench/loadgen.c}), nginx (Debian's packages, unpacked into
the cache), and a certificate for this run.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.harness.processes import note
from bench.harness.settings import (
    BENCH,
    CACHE,
    COMPILE_FLAGS,
    LOOPBACK,
    SERVER_NAME,
    BenchmarkError,
    KeyType,
)


def buildLoadGenerator() -> Path:
    """
    Compile C{loadgen.c} against the system's OpenSSL (Debian's libssl-dev)
    into the cache, once per version of the source.
    """
    source = BENCH / "loadgen.c"
    digest = hashlib.sha256(source.read_bytes() + " ".join(COMPILE_FLAGS).encode())
    binary = CACHE / f"loadgen-{digest.hexdigest()[:12]}"
    if binary.exists():
        return binary
    compiler = shutil.which("gcc") or shutil.which("cc")
    if compiler is None:
        raise BenchmarkError("no C compiler: install gcc (apt-get install gcc)")
    if not Path("/usr/include/openssl/ssl.h").exists():
        raise BenchmarkError(
            "no OpenSSL headers: install libssl-dev (apt-get install libssl-dev)"
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    partial = binary.with_suffix(".partial")
    result = subprocess.run(
        [compiler, *COMPILE_FLAGS, "-o", str(partial), str(source), "-lssl", "-lcrypto"],
        capture_output=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise BenchmarkError(
            "compiling bench/loadgen.c failed:\n" + result.stderr.decode(errors="replace")
        )
    partial.rename(binary)
    return binary


@dataclass
class Nginx:
    """
    An nginx binary, its stream module (when it is a separate module) and
    where they came from.
    """

    binary: Path
    module: Path | None
    origin: str
    version: str = ""
    openssl: str = ""


def _nginxFacts(nginx: Nginx) -> Nginx:
    """
    Fill in the version and the OpenSSL nginx runs with (C{nginx -V}).
    """
    result = subprocess.run([str(nginx.binary), "-V"], capture_output=True, timeout=30)
    text = result.stderr.decode(errors="replace")
    for line in text.splitlines():
        if line.startswith("nginx version:"):
            nginx.version = line.split(":", 1)[1].strip()
        if "OpenSSL" in line and line.startswith("built with"):
            running = line.split("running with", 1)[-1].strip(" ()")
            nginx.openssl = running if "running with" in line else line[len("built with ") :]
    if result.returncode != 0 or not nginx.version:
        raise BenchmarkError(f"{nginx.binary} -V failed: {text.strip()}")
    return nginx


def obtainNginx() -> Nginx:
    """
    Debian's C{nginx} and C{libnginx-mod-stream}, downloaded with
    C{apt-get download} and unpacked with C{dpkg -x} into the cache: no
    service is installed or started, nothing outside the cache changes
    (except C{apt-get update} when apt has no package lists yet). Falls
    back to an installed nginx with a stream module.
    """
    root = CACHE / "nginx" / "root"
    binary = root / "usr/sbin/nginx"
    module = root / "usr/lib/nginx/modules/ngx_stream_module.so"
    problems: list[str] = []
    if not (binary.exists() and module.exists()):
        try:
            _downloadNginx(root)
        except (OSError, subprocess.SubprocessError, BenchmarkError) as error:
            problems.append(f"downloading Debian's nginx failed: {error}")
    if binary.exists() and module.exists():
        missing = _missingLibraries(binary) + _missingLibraries(module)
        if not missing:
            return _nginxFacts(Nginx(binary, module, "Debian packages unpacked in bench/.cache"))
        problems.append("the unpacked nginx lacks libraries: " + ", ".join(missing))
    installed = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None)
    if installed:
        nginx = _nginxFacts(Nginx(Path(installed), None, f"installed ({installed})"))
        builtIn = subprocess.run([installed, "-V"], capture_output=True, timeout=30).stderr
        if b"--with-stream " in builtIn + b" " and b"--with-stream=dynamic" not in builtIn:
            return nginx
        for candidate in (
            Path("/usr/lib/nginx/modules/ngx_stream_module.so"),
            Path("/usr/lib64/nginx/modules/ngx_stream_module.so"),
        ):
            if candidate.exists():
                nginx.module = candidate
                return nginx
        problems.append(f"the installed {installed} has no stream module")
    raise BenchmarkError("no usable nginx: " + "; ".join(problems or ["none found"]))


def _downloadNginx(root: Path) -> None:
    download = CACHE / "nginx" / "debs"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir(parents=True)
    command = ["apt-get", "download", "-q", "nginx", "libnginx-mod-stream"]
    result = subprocess.run(command, cwd=download, capture_output=True, timeout=300)
    if result.returncode != 0 and os.geteuid() == 0:
        # A fresh machine may have no package lists yet.
        note("bench: apt-get download failed; running apt-get update once")
        subprocess.run(["apt-get", "update", "-qq"], capture_output=True, timeout=600)
        result = subprocess.run(command, cwd=download, capture_output=True, timeout=300)
    if result.returncode != 0:
        raise BenchmarkError(result.stderr.decode(errors="replace").strip().splitlines()[-1])
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    for package in sorted(download.glob("*.deb")):
        subprocess.run(["dpkg", "-x", str(package), str(root)], check=True, timeout=120)
    shutil.rmtree(download, ignore_errors=True)


def _missingLibraries(binary: Path) -> list[str]:
    result = subprocess.run(["ldd", str(binary)], capture_output=True, timeout=30)
    return [
        line.split()[0]
        for line in result.stdout.decode(errors="replace").splitlines()
        if "not found" in line
    ]


@dataclass(frozen=True)
class Credentials:
    """
    A certificate for localhost and its key, as PEM files.
    """

    certificate: Path
    key: Path
    authority: Path


def makeCredentials(directory: Path) -> dict[KeyType, Credentials]:
    """
    A throwaway CA and two server certificates for localhost and 127.0.0.1
    signed by it, RSA-2048 and ECDSA P-256, made with C{cryptography} at run
    time. The servers send the leaf only; the byte-exact check verifies it
    against the CA.
    """
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.UTC)
    caKey = ec.generate_private_key(ec.SECP256R1())
    caName = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tlsreply bench CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(caName)
        .issuer_name(caName)
        .public_key(caKey.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(hours=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(caKey, hashes.SHA256())
    )
    authority = directory / "ca.pem"
    authority.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    made: dict[KeyType, Credentials] = {}
    keys: dict[KeyType, Any] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ecdsa": ec.generate_private_key(ec.SECP256R1()),
    }
    for keyType, key in keys.items():
        leaf = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVER_NAME)]))
            .issuer_name(caName)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(hours=1))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName(SERVER_NAME),
                        x509.IPAddress(ipaddress.ip_address(LOOPBACK)),
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(caKey, hashes.SHA256())
        )
        certificate = directory / f"{keyType}.pem"
        keyPath = directory / f"{keyType}.key"
        certificate.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
        keyPath.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        keyPath.chmod(0o600)
        made[keyType] = Credentials(certificate, keyPath, authority)
    return made
