"""Redis from Debian's ``redis-server``: the Celery broker and the quota counters."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, ClassVar

import psutil

from ..core import procs
from ..core.errors import StackError
from ..security import ca
from .service import Echo, Service

PIDFILE_WAIT_S = 10.0


class Redis(Service):
    name = "redis"
    ready_timeout: ClassVar[float] = 30.0
    stop_timeout: ClassVar[float] = 30.0

    @property
    def host(self) -> str:
        return self.settings.redis_host

    @property
    def port(self) -> int:
        return self.settings.redis_port

    def port_advice(self, role: str) -> str:
        return ", or give MYSIMBDP_REDIS_URL another port"

    def owns(self, proc: psutil.Process) -> bool:
        # redis-server rewrites its title to "redis-server 127.0.0.1:PORT" and works in its --dir.
        text = procs.cmdline(proc)
        return (
            "redis-server" in text
            and any(part.endswith(f":{self.port}") for part in text.split())
            and proc.cwd() == str(self.paths.data)
        )

    def _binary(self) -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise StackError("redis: redis-server is not on PATH; install it with `apt-get install redis-server`")
        return binary

    @property
    def aclfile(self) -> Path:
        return self.paths.conf / "users.acl"

    def prepare(self, echo: Echo) -> None:
        self._binary()
        self.paths.make()
        if self.settings.secure:
            from ..security import redis_acl

            redis_acl.write_aclfile(self.aclfile, self.settings.home)

    def launch(self) -> int:
        cmd = [
            self._binary(),
            *self._listener(),
            "--bind", self.bind_host,
            "--daemonize", "yes",
            "--pidfile", str(self.paths.pidfile),
            "--logfile", str(self.paths.log),
            "--dir", str(self.paths.data),
            # The broker's queues survive a restart; RDB snapshots would only add fork pauses.
            "--appendonly", "yes",
            "--save", "",
            # Celery's broker must never silently drop messages when memory runs short.
            "--maxmemory-policy", "noeviction",
            # Secure mode: users and their rights (hashed passwords only) in a file `ACL SAVE` keeps.
            *(["--aclfile", str(self.aclfile)] if self.settings.secure else []),
        ]
        self.paths.pidfile.unlink(missing_ok=True)
        code = procs.run_logged(cmd, self.paths.log, self.paths.root, timeout=30)
        if code != 0:
            raise StackError(f"redis: redis-server exited with code {code}")
        # With --daemonize the command returns before the server writes its pid file.
        deadline = time.monotonic() + PIDFILE_WAIT_S
        while time.monotonic() < deadline:
            pid = self.live_pid()
            if pid is not None:
                return pid
            time.sleep(0.1)
        raise StackError(f"redis: no running redis-server wrote {self.paths.pidfile} within {PIDFILE_WAIT_S:.0f} s")

    def _listener(self) -> list[str]:
        if not self.settings.secure:
            return ["--port", str(self.port)]
        files = ca.TlsFiles(self.settings.home)
        # TLS only: port 0 closes the plaintext port. Clients are not asked for a certificate; they
        # prove who they are with an ACL user's password once the channel is encrypted.
        return [
            "--port", "0", "--tls-port", str(self.port),
            "--tls-cert-file", str(files.server_cert), "--tls-key-file", str(files.server_key),
            "--tls-ca-cert-file", str(files.ca_cert), "--tls-auth-clients", "no",
            "--tls-protocols", "TLSv1.2 TLSv1.3",
        ]

    def probe(self, timeout: float) -> str:
        import redis  # the client library, imported late to keep `mysimbdp --help` fast

        # Without a listener the client would retry with backoff for seconds.
        if not procs.can_connect(self.host, self.port, timeout):
            raise ConnectionRefusedError(f"nothing listens on {self.endpoint} yet")
        from ..security.identities import ADMIN, credentials

        # Secure mode: TLS verifying the local CA, then the platform admin's ACL login.
        tls: dict[str, Any] = {}
        if self.settings.secure:
            tls = {"ssl": True, "ssl_cert_reqs": "required",
                   "ssl_ca_certs": str(ca.TlsFiles(self.settings.home).ca_cert)}
        user, password = credentials(self.settings, ADMIN) or (None, None)
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=timeout, socket_connect_timeout=timeout,
                             username=user, password=password, **tls)
        try:
            if not client.ping():
                raise StackError("redis: PING was not answered with PONG")
            version = client.info("server").get("redis_version", "?")
        finally:
            client.close()
        return f"Redis {version}" + (" (TLS, ACL users on)" if self.settings.secure else "")
