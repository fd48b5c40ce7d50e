"""gunicorn settings for jeg-contacts: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Every value can be changed from the environment (the systemd unit reads
/etc/jeg-contacts/jeg-contacts.env), so this file stays as shipped. docs/deployment.md explains
each choice.
"""

import os
import re

from gunicorn.glogging import Logger


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    return int(raw) if raw.strip() else default


def _cpu_count() -> int:
    # The CPUs this process may run on (a container or a cgroup may allow fewer than exist).
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


# Only the proxy on this host talks to gunicorn; it listens on the loopback.
bind = os.environ.get("GUNICORN_BIND", "127.0.0.1:8000")

# Synchronous workers, gunicorn's own rule of thumb: (2 x CPUs) + 1. Each request holds one
# worker while it waits for the database, so a few more workers than CPUs keep them busy;
# nginx buffers slow clients, so none is held by a slow network. WEB_CONCURRENCY is the
# variable gunicorn and hosting platforms already use for this.
workers = _int("WEB_CONCURRENCY", 2 * _cpu_count() + 1)
worker_class = "sync"

# A worker silent for this long is killed and replaced. The slowest ordinary request is an
# XLSX export of the whole directory (about 30 s for 100,000 contacts, docs/benchmarks.md),
# so the limit leaves room for that and catches only a worker that is really stuck. The
# proxy's proxy_read_timeout must be at least as long.
timeout = _int("GUNICORN_TIMEOUT", 120)
# On SIGTERM (systemctl stop, an upgrade) gunicorn stops accepting connections and lets the
# requests in flight finish for up to this long before killing their workers. systemd's
# TimeoutStopSec for the web unit is longer, so it never cuts this short.
graceful_timeout = _int("GUNICORN_GRACEFUL_TIMEOUT", 60)
# nginx opens a new connection per request by default; a short keep-alive is enough.
keepalive = 5
# No control socket (gunicorn 25.1+ opens one in $HOME/.gunicorn by default, shared by every
# gunicorn of the same user): the services are driven by signals (systemctl reload/stop).
control_socket_disable = True

# One line per request on standard output (the journal under systemd). %(h)s is the client's
# address as the app sees it (ProxyFix rewrites it when TRUSTED_PROXY_COUNT trusts a proxy);
# forwarded-for shows the header as the proxy sent it.
# GUNICORN_ACCESS_LOG= (empty) turns it off, e.g. when LOG_FORMAT=json logs each request.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-") or None
access_log_format = (
    '%(h)s forwarded-for="%({x-forwarded-for}i)s" %(t)s "%(r)s" %(s)s %(b)s %(M)sms "%(a)s"'
)

# The links mailed to people carry secret tokens in their paths (/confirm/<token>,
# /preferences/<token>, ...; staff's import pages too), and a preference link never expires:
# whoever reads a log must not be able to use them.
_TOKEN_IN_PATH = re.compile(r"(/(?:confirm|preferences|unsubscribe|imports)/)[^/?\s]+")


class TokenHidingLogger(Logger):
    """gunicorn's logger, with the tokens of emailed links cut out of access log lines."""

    def atoms(self, resp, req, environ: dict, request_time) -> dict:
        atoms = super().atoms(resp, req, environ, request_time)
        for name in ("r", "U"):
            atoms[name] = _TOKEN_IN_PATH.sub(r"\1<token>", atoms[name] or "")
        return atoms


logger_class = TokenHidingLogger
errorlog = "-"
loglevel = os.environ.get("GUNICORN_LOG_LEVEL", "info")

# Who may say that a request came over HTTPS, kept in step with the app's own rule.
#
# The app trusts the X-Forwarded-For/-Proto/-Host headers of exactly TRUSTED_PROXY_COUNT
# proxies (werkzeug's ProxyFix, in jeg_contacts/__init__.py). gunicorn has a rule of its own:
# by default it believes X-Forwarded-Proto from any client on 127.0.0.1 and then tells the app
# the request was HTTPS, with or without ProxyFix. Left alone, the two disagree exactly when
# TRUSTED_PROXY_COUNT=0: the app trusts no proxy, yet a local client could make it believe a
# plain HTTP request was HTTPS (and so change the CSRF referrer check and secure-cookie logic).
# So: with no trusted proxy, gunicorn trusts nobody either; with one or more, it trusts the
# proxy's address (FORWARDED_ALLOW_IPS, the loopback by default, where nginx runs), and only
# X-Forwarded-Proto, the one header ProxyFix reads for the scheme. When both act they agree,
# and ProxyFix, which runs last and counts the proxies, has the final word.
_trusted_proxies = _int("TRUSTED_PROXY_COUNT", 0)
forwarded_allow_ips = (
    os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1") if _trusted_proxies > 0 else ""
)
secure_scheme_headers = {"X-FORWARDED-PROTO": "https"}
