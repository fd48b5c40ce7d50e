#!/usr/bin/env bash
# Install jeg-contacts on a Debian 12 server, or upgrade it: run it again with newer code.
#
#   sudo deploy/install.sh
#   sudo BASE_URL=https://contacts.example.org SMTP_HOST=relay.example.org \
#        SMTP_SECURITY=starttls SMTP_USERNAME=jeg SMTP_PASSWORD=... deploy/install.sh
#
# It installs the system packages (Python, PostgreSQL), a system user, this source tree in
# $JEG_PREFIX/app with a virtualenv beside it, a settings file with a generated SECRET_KEY, a
# PostgreSQL role and database, applies the migrations, adds the topics, and starts two
# services: the web application (gunicorn on 127.0.0.1:$JEG_PORT, for nginx to proxy) and the
# delivery worker. Every step is safe to repeat. A later run upgrades: it copies the new code,
# stops the worker politely (the messages being sent finish, nothing is lost or sent twice),
# stops the web, applies the migrations and starts both again.
#
# Where systemd runs (a normal server) the services are systemd units; where it does not (a
# container), the same commands run under start-stop-daemon, as the same user and with the same
# settings, with pid files in /run/jeg-contacts and logs in /var/log/jeg-contacts.
#
# Settings, from the environment (`sudo VAR=value deploy/install.sh`; sudo drops the rest):
#   JEG_PREFIX    /opt/jeg-contacts         code (app/), virtualenv (venv/), bin/jeg-contacts
#   JEG_ETC       /etc/jeg-contacts         settings file jeg-contacts.env
#   JEG_DATA      /var/lib/jeg-contacts     INSTANCE_PATH: Maildir outbox, import uploads
#   JEG_USER      jeg-contacts              system user the services run as
#   JEG_PORT      8000                      gunicorn's loopback port (GUNICORN_BIND)
#   JEG_DB_NAME   jeg_contacts              PostgreSQL database created on this host ...
#   JEG_DB_USER   jeg_contacts              ... and its role (password generated, kept)
#   JEG_INSTALL_PACKAGES  1                 0: do not apt-get (the packages are there)
#   JEG_NGINX     0                         1: also install nginx with deploy/nginx/jeg-contacts.conf
#   JEG_SERVER_NAME  BASE_URL's host        the site's name (JEG_NGINX=1)
#   JEG_TLS_CERT, JEG_TLS_KEY               its certificate and key (JEG_NGINX=1; default: the
#                                           files certbot makes for JEG_SERVER_NAME)
# and these app settings, written into the settings file when given, kept from it otherwise
# (README's configuration table says what each means):
#   BASE_URL (first run: https://<this host's name>), DATABASE_URL (given: no local database
#   is created), MAIL_FROM, SMTP_HOST, SMTP_PORT, SMTP_SECURITY, SMTP_USERNAME, SMTP_PASSWORD,
#   SMTP_CA_FILE, SMTP_ALLOW_PLAINTEXT_AUTH, TRUSTED_PROXY_COUNT (first run: 1, nginx),
#   WEB_CONCURRENCY (gunicorn workers), WORKER_ARGS (e.g. "--concurrency 2 --rate 5"), and
#   JEG_SSL_CERT_FILE, written as SSL_CERT_FILE: a CA bundle the app trusts instead of the
#   system's (a private CA; not SSL_CERT_FILE itself, which many shells already set).
# docs/deployment.md has the whole story.
set -euo pipefail
# The system's Python (the package installed below), never one of root's own, which the
# service user could not run; files readable by the service whatever root's umask.
PYTHON=/usr/bin/python3
umask 022

JEG_PREFIX=${JEG_PREFIX:-/opt/jeg-contacts}
JEG_ETC=${JEG_ETC:-/etc/jeg-contacts}
JEG_DATA=${JEG_DATA:-/var/lib/jeg-contacts}
JEG_USER=${JEG_USER:-jeg-contacts}
JEG_DB_NAME=${JEG_DB_NAME:-jeg_contacts}
JEG_DB_USER=${JEG_DB_USER:-jeg_contacts}
JEG_INSTALL_PACKAGES=${JEG_INSTALL_PACKAGES:-1}
JEG_NGINX=${JEG_NGINX:-0}
APP_SETTINGS=(BASE_URL DATABASE_URL MAIL_FROM SMTP_HOST SMTP_PORT SMTP_SECURITY SMTP_USERNAME
  SMTP_PASSWORD SMTP_CA_FILE SMTP_ALLOW_PLAINTEXT_AUTH TRUSTED_PROXY_COUNT WEB_CONCURRENCY
  WORKER_ARGS)

SOURCE=$(cd "$(dirname "$0")/.." && pwd)
APP=$JEG_PREFIX/app
VENV=$JEG_PREFIX/venv
ENV_FILE=$JEG_ETC/jeg-contacts.env
RUN_DIR=/run/jeg-contacts
LOG_DIR=/var/log/jeg-contacts
SERVICES=(web worker)

say() { printf '==> %s\n' "$*"; }
fail() { printf 'install.sh: %s\n' "$*" >&2; exit 1; }

systemd_running() { [ -d /run/systemd/system ]; }

# --- system -----------------------------------------------------------------------------------

install_packages() {
  local wanted=(python3 python3-venv postgresql ca-certificates) missing=() package
  [ "$JEG_NGINX" != 1 ] || wanted+=(nginx)
  for package in "${wanted[@]}"; do
    dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" \
      || missing+=("$package")
  done
  [ ${#missing[@]} -eq 0 ] && return
  [ "$JEG_INSTALL_PACKAGES" = 1 ] || fail "missing packages: ${missing[*]} (JEG_INSTALL_PACKAGES=0)"
  say "Installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

create_user() {
  id -u "$JEG_USER" >/dev/null 2>&1 && return
  say "Creating system user $JEG_USER"
  useradd --system --user-group --home-dir "$JEG_DATA" --no-create-home \
    --shell /usr/sbin/nologin "$JEG_USER"
}

create_folders() {
  install -d -m 0755 "$JEG_PREFIX" "$JEG_PREFIX/bin"
  install -d -m 0750 -o root -g "$JEG_USER" "$JEG_ETC"
  install -d -m 0750 -o "$JEG_USER" -g "$JEG_USER" "$JEG_DATA"
  if ! systemd_running; then
    install -d -m 0755 -o "$JEG_USER" -g "$JEG_USER" "$RUN_DIR" "$LOG_DIR"
  fi
}

# --- settings ---------------------------------------------------------------------------------

setting() { # the value of $1 in the settings file, empty if absent
  [ -f "$ENV_FILE" ] || return 0
  sed -n "s/^$1=//p" "$ENV_FILE" | tail -n 1
}

set_setting() { # write $1=$2 into the settings file, replacing an earlier line
  local name=$1 value=$2
  case $value in
    *$'\n'* | *\\* | \"* | \'*)
      fail "$name: a value with a line break, a backslash or leading quotes cannot be written" \
        "safely; edit $ENV_FILE by hand" ;;
  esac
  if grep -q "^$name=" "$ENV_FILE"; then
    local rest
    rest=$(grep -v "^$name=" "$ENV_FILE" || true)
    printf '%s\n%s=%s\n' "$rest" "$name" "$value" >"$ENV_FILE"
  else
    printf '%s=%s\n' "$name" "$value" >>"$ENV_FILE"
  fi
}

write_settings() {
  if [ ! -f "$ENV_FILE" ]; then
    say "Writing $ENV_FILE (a new SECRET_KEY)"
    install -m 0640 -o root -g "$JEG_USER" /dev/null "$ENV_FILE"
    cat >"$ENV_FILE" <<EOF
# jeg-contacts settings, read by both services (README: Configuration). Written by
# deploy/install.sh, which keeps every line on later runs and changes only the settings it is
# given. After editing: systemctl restart jeg-contacts-web jeg-contacts-worker
# (or run deploy/install.sh again).
JEG_ENV=production
SECRET_KEY=$("$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))')
INSTANCE_PATH=$JEG_DATA
GUNICORN_BIND=127.0.0.1:${JEG_PORT:-8000}
BASE_URL=https://$(hostname --fqdn 2>/dev/null || hostname)
# nginx on this host is the one proxy in front (deploy/nginx/jeg-contacts.conf).
TRUSTED_PROXY_COUNT=1
# Mail goes to the Maildir outbox in $JEG_DATA/outbox until SMTP_HOST names a relay:
# SMTP_HOST=relay.example.org
# SMTP_SECURITY=starttls
# SMTP_USERNAME=jeg-contacts
# SMTP_PASSWORD=...
# SMTP_CA_FILE=/etc/jeg-contacts/relay-ca.pem
# MAIL_FROM=JEG secretariat <jeg-contacts@example.org>
EOF
  fi
  [ -n "$(setting SECRET_KEY)" ] || fail "$ENV_FILE has no SECRET_KEY"
  [ -z "${JEG_PORT:-}" ] || set_setting GUNICORN_BIND "127.0.0.1:$JEG_PORT"
  local name
  for name in "${APP_SETTINGS[@]}"; do
    if [ -n "${!name+set}" ]; then
      set_setting "$name" "${!name}"
    fi
  done
  [ -z "${JEG_SSL_CERT_FILE+set}" ] || set_setting SSL_CERT_FILE "$JEG_SSL_CERT_FILE"
  chown root:"$JEG_USER" "$ENV_FILE"
  chmod 0640 "$ENV_FILE"
}

# --- database ---------------------------------------------------------------------------------

start_postgresql() {
  if systemd_running; then
    systemctl enable --now postgresql >/dev/null 2>&1 || true
  fi
  local version
  version=$(pg_lsclusters --no-header | awk 'NR == 1 {print $1}')
  if [ -z "$version" ]; then
    version=$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf "%f\n" | sort -n | tail -n 1)
    say "Creating PostgreSQL cluster $version/main"
    pg_createcluster "$version" main >/dev/null
  fi
  pg_ctlcluster "$version" main start 2>/dev/null || true
  for _ in $(seq 1 30); do pg_isready -q && return; sleep 1; done
  fail "PostgreSQL does not answer (pg_lsclusters, /var/log/postgresql)"
}

psql_admin() { runuser -u postgres -- psql -v ON_ERROR_STOP=1 -qtAc "$1"; }

create_database() {
  # DATABASE_URL given, now or in an earlier run: a database of the operator's own.
  [ -z "${DATABASE_URL+set}" ] || return 0
  case $(setting DATABASE_URL) in "" | *"@127.0.0.1:5432/$JEG_DB_NAME") ;; *) return 0 ;; esac
  start_postgresql
  local password=""
  if [ -z "$(psql_admin "SELECT 1 FROM pg_roles WHERE rolname = '$JEG_DB_USER'")" ]; then
    say "Creating PostgreSQL role $JEG_DB_USER"
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')
    psql_admin "CREATE ROLE \"$JEG_DB_USER\" LOGIN PASSWORD '$password'"
  elif [ -z "$(setting DATABASE_URL)" ]; then
    # The role exists but its password was not kept here: give it a new one.
    password=$("$PYTHON" -c 'import secrets; print(secrets.token_hex(24))')
    psql_admin "ALTER ROLE \"$JEG_DB_USER\" LOGIN PASSWORD '$password'"
  fi
  if [ -z "$(psql_admin "SELECT 1 FROM pg_database WHERE datname = '$JEG_DB_NAME'")" ]; then
    say "Creating PostgreSQL database $JEG_DB_NAME"
    runuser -u postgres -- createdb -O "$JEG_DB_USER" "$JEG_DB_NAME"
  fi
  if [ -n "$password" ]; then
    set_setting DATABASE_URL \
      "postgresql+psycopg://$JEG_DB_USER:$password@127.0.0.1:5432/$JEG_DB_NAME"
  fi
}

# --- code -------------------------------------------------------------------------------------

stage_code() { # copy this source tree to $APP.new: the package, templates, migrations, deploy
  [ "$SOURCE" != "$APP" ] || return 0
  rm -rf "$APP.new"
  install -d -m 0755 "$APP.new"
  tar -C "$SOURCE" --exclude=./.git --exclude=./.venv --exclude=./instance \
    --exclude=__pycache__ --exclude='*.egg-info' --exclude=./test-artifacts \
    --exclude=./.pytest_cache --exclude=./.ruff_cache --exclude=./.import_linter_cache \
    -cf - . | tar -C "$APP.new" --no-same-owner -xf -
  chmod -R u=rwX,go=rX "$APP.new"
}

switch_code() {
  [ -d "$APP.new" ] || return 0
  rm -rf "$APP.old"
  [ ! -d "$APP" ] || mv "$APP" "$APP.old"
  mv "$APP.new" "$APP"
  rm -rf "$APP.old"
}

install_python() {
  [ -x "$VENV/bin/python" ] || { say "Creating the virtualenv $VENV"; "$PYTHON" -m venv "$VENV"; }
  say "Installing the Python packages"
  # Editable: the app finds templates/ and migrations/ beside its package, in $APP.
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -e "${APP}[postgres]"
  # Compiled once here: the services cannot write into the code (it belongs to root).
  "$VENV/bin/python" -m compileall -q "$APP/jeg_contacts" "$APP/migrations" "$APP/wsgi.py" \
    >/dev/null
}

write_tools() {
  # with-env: runs a program with exactly the settings file's variables, as systemd's
  # EnvironmentFile= does (KEY=VALUE lines, '#' comments, one pair of surrounding quotes).
  cat >"$JEG_PREFIX/bin/with-env" <<EOF
#!/usr/bin/env bash
set -euo pipefail
settings=(PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8 HOME=$JEG_DATA)
while IFS= read -r line || [ -n "\$line" ]; do
  case \$line in '' | '#'*) continue ;; esac
  name=\${line%%=*} value=\${line#*=}
  case \$value in \"*\" | \'*\') value=\${value:1:-1} ;; esac
  settings+=("\$name=\$value")
done <$ENV_FILE
exec env -i "\${settings[@]}" "\$@"
EOF
  # jeg-contacts: any `flask --app wsgi` command, as the service user with its settings.
  cat >"$JEG_PREFIX/bin/jeg-contacts" <<EOF
#!/usr/bin/env bash
# jeg-contacts COMMAND...: \`flask --app wsgi COMMAND...\` as the service, e.g.
#   sudo jeg-contacts users create you@example.org --role admin
set -euo pipefail
if [ "\$(id -u)" = 0 ]; then
  exec runuser -u $JEG_USER -- $JEG_PREFIX/bin/with-env $VENV/bin/flask --app $APP/wsgi.py "\$@"
fi
exec $JEG_PREFIX/bin/with-env $VENV/bin/flask --app $APP/wsgi.py "\$@"
EOF
  chmod 0755 "$JEG_PREFIX/bin/with-env" "$JEG_PREFIX/bin/jeg-contacts"
  ln -sf "$JEG_PREFIX/bin/jeg-contacts" /usr/local/bin/jeg-contacts
}

# --- services ---------------------------------------------------------------------------------

install_units() {
  local service
  for service in "${SERVICES[@]}"; do
    sed -e "s|/opt/jeg-contacts|$JEG_PREFIX|g" -e "s|/etc/jeg-contacts|$JEG_ETC|g" \
      -e "s|/var/lib/jeg-contacts|$JEG_DATA|g" -e "s|^User=.*|User=$JEG_USER|" \
      -e "s|^Group=.*|Group=$JEG_USER|" \
      "$APP/deploy/systemd/jeg-contacts-$service.service" \
      >"/etc/systemd/system/jeg-contacts-$service.service"
  done
  systemctl daemon-reload
  systemctl enable jeg-contacts-web jeg-contacts-worker >/dev/null 2>&1
}

stop_service() { # $1: web or worker; waits until it has stopped
  if systemd_running; then
    systemctl stop "jeg-contacts-$1" 2>/dev/null || true
    return
  fi
  [ -f "$RUN_DIR/$1.pid" ] || return 0
  # SIGTERM is the polite stop of both; wait as long as their systemd units would.
  local patience=90
  [ "$1" = worker ] && patience=180
  start-stop-daemon --stop --quiet --pidfile "$RUN_DIR/$1.pid" --remove-pidfile \
    --retry "TERM/$patience/KILL/5" || true
}

start_service() { # $1: web or worker
  if systemd_running; then
    systemctl restart "jeg-contacts-$1"
    return
  fi
  local command
  if [ "$1" = web ]; then
    command=("$VENV/bin/gunicorn" -c deploy/gunicorn.conf.py wsgi:app)
  else
    # WORKER_ARGS split on blanks, as systemd splits an unbraced $WORKER_ARGS.
    read -r -a command <<<"$VENV/bin/flask --app wsgi worker $(setting WORKER_ARGS)"
  fi
  start-stop-daemon --start --quiet --oknodo --background --make-pidfile \
    --pidfile "$RUN_DIR/$1.pid" --chuid "$JEG_USER:$JEG_USER" --chdir "$APP" \
    --output "$LOG_DIR/$1.log" --startas "$JEG_PREFIX/bin/with-env" -- "${command[@]}"
}

wait_for_web() {
  local bind
  bind=$(setting GUNICORN_BIND)
  for _ in $(seq 1 60); do
    "$PYTHON" - "$bind" <<'EOF' && return
import sys, urllib.request
urllib.request.urlopen(f"http://{sys.argv[1]}/healthz", timeout=2)
EOF
    sleep 1
  done 2>/dev/null
  fail "the web application does not answer on $bind (see the log)"
}

# --- nginx (JEG_NGINX=1) ---------------------------------------------------------------------

install_site() { # deploy/nginx/jeg-contacts.conf with this server's name, certificate and port
  local name=${JEG_SERVER_NAME:-}
  if [ -z "$name" ]; then
    name=$(setting BASE_URL)
    name=${name#*://}
    name=${name%%/*}
    name=${name%%:*}
  fi
  local cert=${JEG_TLS_CERT:-/etc/letsencrypt/live/$name/fullchain.pem}
  local key=${JEG_TLS_KEY:-/etc/letsencrypt/live/$name/privkey.pem}
  [ -f "$cert" ] && [ -f "$key" ] || fail "no TLS certificate for $name: get one first" \
    "(certbot certonly --standalone -d $name) or give JEG_TLS_CERT and JEG_TLS_KEY"
  say "Installing the nginx site for $name"
  sed -e "s|/etc/letsencrypt/live/contacts.example.org/fullchain.pem|$cert|" \
    -e "s|/etc/letsencrypt/live/contacts.example.org/privkey.pem|$key|" \
    -e "s|contacts.example.org|$name|g" \
    -e "s|http://127.0.0.1:8000|http://$(setting GUNICORN_BIND)|" \
    "$APP/deploy/nginx/jeg-contacts.conf" >/etc/nginx/sites-available/jeg-contacts
  ln -sf ../sites-available/jeg-contacts /etc/nginx/sites-enabled/jeg-contacts
  nginx -t -q
  if systemd_running; then
    systemctl enable nginx >/dev/null 2>&1
    systemctl reload-or-restart nginx
  elif [ -f /run/nginx.pid ] && kill -0 "$(cat /run/nginx.pid)" 2>/dev/null; then
    nginx -s reload
  else
    nginx
  fi
}

# --- the run ----------------------------------------------------------------------------------

main() {
  [ "$(id -u)" = 0 ] || fail "run as root: sudo deploy/install.sh"
  [ -f "$SOURCE/wsgi.py" ] && [ -d "$SOURCE/migrations" ] || fail "$SOURCE is not the source tree"
  local upgrade=""
  [ -d "$APP" ] && upgrade=1

  install_packages
  create_user
  create_folders
  write_settings
  create_database
  stage_code
  if [ -n "$upgrade" ]; then
    # The worker first: its SIGTERM lets each message being sent finish and be recorded.
    say "Stopping the worker (it finishes the messages it is sending), then the web"
    stop_service worker
    stop_service web
  fi
  switch_code
  install_python
  write_tools
  say "Applying the migrations and adding the topics"
  "$JEG_PREFIX/bin/jeg-contacts" db upgrade
  "$JEG_PREFIX/bin/jeg-contacts" seed
  if systemd_running; then
    install_units
  else
    say "systemd is not running here: starting the services with start-stop-daemon" \
      "(pid files in $RUN_DIR, logs in $LOG_DIR)"
  fi
  start_service web
  start_service worker
  wait_for_web
  [ "$JEG_NGINX" != 1 ] || install_site
  say "jeg-contacts is $([ -n "$upgrade" ] && echo upgraded || echo installed), serving on" \
    "http://$(setting GUNICORN_BIND)"
  if "$JEG_PREFIX/bin/jeg-contacts" users list | grep -q "^No staff accounts"; then
    cat <<EOF

  No staff account yet. Create the first administrator (it asks for a password):
    sudo jeg-contacts users create you@example.org --role admin
  then put nginx in front (deploy/nginx/jeg-contacts.conf) and log in at
  $(setting BASE_URL)/admin/login

EOF
  fi
}

main "$@"
