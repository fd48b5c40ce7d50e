"""A private Debian Postfix for the tests: the relay a server sends through, on loopback.

One instance has its configuration, queue and data directories in a temporary folder of its
own (not chrooted; the system's own mail setup is never read or touched) and listens on two
free loopback ports:

- submission: STARTTLS required before anything else, then a SASL login (Cyrus sasldb);
- smtps: TLS from the first byte (wrapper mode), with the same login.

Its certificate comes from a throwaway CA (`ca_file`: what the app gets as SMTP_CA_FILE).
Everything it accepts goes on through `relayhost` to a capture server (aiosmtpd on loopback),
where the tests read what arrived after the whole trip.

`settings` adds or overrides main.cf parameters ("{folder}" in a value stands for the
instance's folder, which exists from construction on, so files they name can be written before
start()). Bounces, for instance, need no change here: with

    virtual_mailbox_domains = bounces.jeg.test, mailboxes.test
    virtual_mailbox_base = {folder}/mail        (a folder owned by the postfix user)
    virtual_mailbox_maps = texthash:{folder}/etc/mailboxes
                           ("bounces@bounces.jeg.test bounces/": a Maildir)
    virtual_uid_maps = static:<postfix uid>, and virtual_gid_maps likewise
    smtpd_reject_unlisted_recipient = no

mail to an unknown user at mailboxes.test is accepted, then bounced by the `virtual` agent (in
master.cf already): the report (multipart/report) lands in {folder}/mail/bounces/new when the
envelope sender is bounces@bounces.jeg.test, and everything else still goes to the capture.
"""

import contextlib
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

from aiosmtpd.controller import Controller

from tests.conftest import RecordingHandler, free_port

POSTFIX = Path("/usr/sbin/postfix")
SASLPASSWD = Path("/usr/sbin/saslpasswd2")
INSTALL = (
    "apt-get install postfix sasl2-bin libsasl2-modules (.ci/run installs them, "
    "preseeded to leave the system's own mail unconfigured)"
)


def unavailable() -> str | None:
    """Why this machine cannot run the private Postfix, or None when it can."""
    for tool in (POSTFIX, SASLPASSWD):
        if not tool.exists():
            return f"{tool} is missing: {INSTALL}"
    if shutil.which("openssl") is None:
        return "the openssl command is missing (it makes the relay's test CA)"
    if os.geteuid() != 0:
        return "Postfix's master process must be started by root"
    return None


@dataclass(frozen=True)
class Certificates:
    ca_file: Path
    certificate: Path
    key: Path


def make_certificates(folder: Path) -> Certificates:
    """A throwaway CA, and a certificate it signed for a server at 127.0.0.1 (or localhost)."""

    def openssl(*arguments: str) -> None:
        subprocess.run(["openssl", *arguments], cwd=folder, check=True, capture_output=True)

    new_key = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
    openssl(
        "req", "-x509", *new_key, "-keyout", "ca.key", "-out", "ca.pem", "-days", "2",
        "-subj", "/CN=JEG test relay CA",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    openssl("req", *new_key, "-keyout", "relay.key", "-out", "relay.csr", "-subj", "/CN=relay")
    (folder / "relay.ext").write_text(
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "basicConstraints=critical,CA:FALSE\n"
        "keyUsage=critical,digitalSignature\n"
        "extendedKeyUsage=serverAuth\n"
    )
    openssl(
        "x509", "-req", "-in", "relay.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
        "-CAcreateserial", "-days", "2", "-out", "relay.pem", "-extfile", "relay.ext",
    )  # fmt: skip
    return Certificates(folder / "ca.pem", folder / "relay.pem", folder / "relay.key")


class CaptureServer:
    """The relay's next hop: an aiosmtpd server keeping every message Postfix passes on.

    It lives as long as the relay; `reset()` gives each test a recorder of its own."""

    def __init__(self) -> None:
        self.recorder = RecordingHandler()
        self.port = free_port()
        # A relay passes SMTPUTF8 on only to a next hop that offers it, as real ones do.
        self._controller = Controller(
            self, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=True
        )

    async def handle_DATA(self, server, session, envelope) -> str:
        return await self.recorder.handle_DATA(server, session, envelope)

    def start(self) -> None:
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()

    def reset(self) -> RecordingHandler:
        self.recorder = RecordingHandler()
        return self.recorder


def _main_cf(relay: "PostfixRelay") -> dict[str, str]:
    folder, certificates = relay.folder, relay.certificates
    return {
        "compatibility_level": "3.6",
        "queue_directory": str(folder / "queue"),
        "data_directory": str(folder / "data"),
        # No syslog in a test machine: postlogd writes the log to a file the tests can show.
        "maillog_file": str(folder / "maillog"),
        "maillog_file_prefixes": str(folder),
        "myhostname": "relay.jeg.test",
        "mydomain": "jeg.test",
        "myorigin": "$myhostname",
        "mydestination": "",
        "local_recipient_maps": "",
        "alias_maps": "",
        "alias_database": "",
        "biff": "no",
        "inet_interfaces": "127.0.0.1",
        "inet_protocols": "ipv4",
        "mynetworks": "127.0.0.1/32",
        "relayhost": f"[127.0.0.1]:{relay.capture.port}",
        "smtp_dns_support_level": "disabled",
        "smtp_host_lookup": "native",
        "smtp_tls_security_level": "none",
        # Relaying only for a client that logged in: a wrong password must not slip through
        # as a trusted local network would.
        "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
        "smtpd_recipient_restrictions": "permit_sasl_authenticated, reject",
        "smtpd_tls_cert_file": str(certificates.certificate),
        "smtpd_tls_key_file": str(certificates.key),
        "smtpd_tls_auth_only": "yes",
        "smtpd_sasl_type": "cyrus",
        "smtpd_sasl_path": "smtpd",
        # Debian's Postfix reads smtpd.conf from $config_directory/sasl whatever this says.
        "cyrus_sasl_config_path": str(folder / "etc" / "sasl"),
        "smtpd_sasl_local_domain": relay.realm,
        "smtpd_sasl_security_options": "noanonymous",
        # A capture server that stops between tests must not leave mail waiting for minutes.
        "queue_run_delay": "1s",
        "minimal_backoff_time": "1s",
        "maximal_backoff_time": "2s",
        # "{folder}" in a value stands for the instance's folder (a Maildir base, a map file).
        **{name: value.format(folder=folder) for name, value in relay.settings.items()},
    }


# Every service as Debian's master.cf has it, none chrooted (a chroot would need copies of
# the config, the sasldb and the CA inside the queue directory).
_MASTER_CF = """\
127.0.0.1:{submission_port} inet n - n - - smtpd
  -o syslog_name=postfix/submission
  -o smtpd_tls_security_level=encrypt
  -o smtpd_sasl_auth_enable=yes
127.0.0.1:{smtps_port} inet n - n - - smtpd
  -o syslog_name=postfix/smtps
  -o smtpd_tls_wrappermode=yes
  -o smtpd_sasl_auth_enable=yes
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n - 0 cleanup
qmgr      unix  n - n 300 1 qmgr
tlsmgr    unix  - - n 1000? 1 tlsmgr
rewrite   unix  - - n - - trivial-rewrite
bounce    unix  - - n - 0 bounce
defer     unix  - - n - 0 bounce
trace     unix  - - n - 0 bounce
verify    unix  - - n - 1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n - - proxymap
smtp      unix  - - n - - smtp
relay     unix  - - n - - smtp
showq     unix  n - n - - showq
error     unix  - - n - - error
retry     unix  - - n - - error
discard   unix  - - n - - discard
local     unix  - n n - - local
virtual   unix  - n n - - virtual
anvil     unix  - - n - 1 anvil
scache    unix  - - n - 1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


@dataclass
class PostfixRelay:
    """A private Postfix instance relaying to `capture`; start() it, and always stop() it."""

    capture: CaptureServer
    settings: Mapping[str, str] = field(default_factory=dict)
    username: str = "jeg"
    password: str = "relay password"
    realm: str = "jeg.test"
    folder: Path = field(init=False)
    certificates: Certificates = field(init=False)
    submission_port: int = field(init=False)
    smtps_port: int = field(init=False)

    def __post_init__(self) -> None:
        # Its own folder, not pytest's: Postfix's daemons run as the postfix user, who must be
        # able to reach the sasldb and the queue, and pytest's folders are private to root.
        self.folder = Path(tempfile.mkdtemp(prefix="jeg-postfix-"))
        self.folder.chmod(0o755)
        try:
            self.certificates = make_certificates(self.folder)
        except BaseException:
            shutil.rmtree(self.folder)
            raise
        self.submission_port = free_port()
        self.smtps_port = free_port()
        for name in ("etc", "etc/sasl", "queue", "data"):
            (self.folder / name).mkdir(mode=0o755)

    @property
    def config_directory(self) -> Path:
        return self.folder / "etc"

    def start(self) -> None:
        """Write the configuration, start the instance and wait until both ports answer.

        Files that `settings` name (a map, say) can be written into the folder before."""
        postfix_uid, postfix_gid = pwd.getpwnam("postfix").pw_uid, grp.getgrnam("postfix").gr_gid
        os.chown(self.folder / "data", postfix_uid, postfix_gid)
        os.chown(self.certificates.key, 0, postfix_gid)
        self.certificates.key.chmod(0o640)
        main_cf = "".join(f"{name} = {value}\n" for name, value in _main_cf(self).items())
        (self.config_directory / "main.cf").write_text(main_cf)
        (self.config_directory / "master.cf").write_text(
            _MASTER_CF.format(submission_port=self.submission_port, smtps_port=self.smtps_port)
        )
        self._write_sasl(postfix_gid)
        self._postfix("start")
        for port in (self.submission_port, self.smtps_port):
            _wait_for_port(port)

    def _write_sasl(self, postfix_gid: int) -> None:
        sasldb = self.config_directory / "sasl" / "sasldb2"
        (self.config_directory / "sasl" / "smtpd.conf").write_text(
            "pwcheck_method: auxprop\n"
            "auxprop_plugin: sasldb\n"
            "mech_list: PLAIN LOGIN\n"
            f"sasldb_path: {sasldb}\n"
        )
        subprocess.run(
            [SASLPASSWD, "-p", "-c", "-f", sasldb, "-u", self.realm, self.username],
            input=self.password.encode(),
            check=True,
            capture_output=True,
        )
        os.chown(sasldb, 0, postfix_gid)
        sasldb.chmod(0o640)

    def _postfix(self, *command: str) -> None:
        result = subprocess.run(
            [POSTFIX, "-c", self.config_directory, *command], capture_output=True, text=True
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"postfix {' '.join(command)} failed:\n{result.stdout}{result.stderr}{self.log()}"
            )

    def app_environment(self, security: str, password: str | None = None) -> dict[str, str]:
        """The settings an operator gives the app to send through this relay: over STARTTLS
        on the submission port, or implicit TLS ("tls") on the smtps port."""
        port = {"starttls": self.submission_port, "tls": self.smtps_port}[security]
        return {
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(port),
            "SMTP_SECURITY": security,
            "SMTP_USERNAME": self.username,
            "SMTP_PASSWORD": self.password if password is None else password,
            "SMTP_CA_FILE": str(self.certificates.ca_file),
            "SMTP_TIMEOUT": "10",
        }

    def failed_logins(self) -> int:
        """How many SASL logins the relay refused so far (each mechanism tried counts)."""
        return sum("authentication failed" in line for line in self.log().splitlines())

    def log(self) -> str:
        """What Postfix logged, to show beside a failure."""
        path = self.folder / "maillog"
        return path.read_text(errors="replace") if path.exists() else ""

    def queued(self) -> int:
        """How many messages wait in the queue (0 once everything went on to the capture).

        Counted in the queue's folders: postqueue, being set-group-id, would want the
        system's own main.cf to list this instance."""
        queues = ("maildrop", "incoming", "active", "deferred", "hold")
        return sum(
            1
            for name in queues
            for path in (self.folder / "queue" / name).rglob("*")
            if path.is_file()
        )

    def wait_until_idle(self, timeout: float = 10.0) -> None:
        """Wait until the queue is empty: what was accepted has gone on."""
        deadline = time.monotonic() + timeout
        while self.queued():
            if time.monotonic() > deadline:
                raise AssertionError(f"Postfix still holds mail after {timeout}s:\n{self.log()}")
            time.sleep(0.1)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        """The first `count` messages the capture received (through Postfix) for this test."""
        try:
            return self.capture.recorder.wait_for(count, timeout)
        except AssertionError as error:
            raise AssertionError(f"{error}; Postfix's log:\n{self.log()}") from None

    def stop(self) -> None:
        """Stop the instance, make sure none of its processes is left, and delete its folder."""
        if (self.config_directory / "main.cf").exists():
            subprocess.run([POSTFIX, "-c", self.config_directory, "stop"], capture_output=True)
        deadline = time.monotonic() + 10
        while (left := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for pid in left:  # only this instance's processes, by their id
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.folder, ignore_errors=True)

    def processes(self) -> list[int]:
        """Ids of the processes of this instance: Postfix passes MAIL_CONFIG to every one."""
        marker = f"MAIL_CONFIG={self.config_directory}".encode()
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                environment = (entry / "environ").read_bytes().split(b"\0")
            except OSError:  # gone meanwhile, or not ours to read
                continue
            if marker in environment:
                found.append(int(entry.name))
        return found


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
