"""Where a study and its runs are stored: URLs checked, made absolute, redacted, probed.

Nothing here imports Optuna, MLflow or TensorFlow: ``tune`` checks every store with these
functions before it creates any, so a bad second store leaves no first one behind.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from autolambda.errors import AutolambdaError, ConfigError

#: The URL schemes of the Optuna storages autolambda accepts (besides ``journal:FILE``).
STORAGE_SCHEMES = ("sqlite", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "mysql", "mysql+pymysql")


def absolute_storage(url: str) -> str:
    """An Optuna storage URL with a relative SQLite or journal path made absolute."""
    if url.startswith("journal:") and not Path(url[len("journal:"):]).is_absolute():
        return "journal:" + str(Path(url[len("journal:"):]).resolve())
    return absolute_sqlite(url)


def absolute_sqlite(url: str) -> str:
    """``sqlite:///rel.db`` made absolute against the current folder.

    Relative SQLite URLs name a different file whenever the folder changes, and MLflow
    caches one store per URL string in a process; an absolute path avoids both.
    """
    prefix = "sqlite:///"
    if url.startswith(prefix) and not url.startswith(prefix + "/"):
        rest = url[len(prefix):]
        if rest and not rest.startswith(":memory:"):
            return prefix + str(Path(rest).resolve())
    return url


def check_storage_url(url: str) -> None:
    """Raise ``ConfigError`` unless ``url`` looks like an Optuna storage URL or journal file."""
    if not isinstance(url, str) or not url:
        raise ConfigError(f"storage must be a URL such as sqlite:///autolambda.db but got {url!r}.")
    if url.startswith("journal:"):
        if not url[len("journal:"):]:
            raise ConfigError("storage 'journal:' needs a file path, e.g. journal:./autolambda.journal.")
        return
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if "://" not in url or scheme not in STORAGE_SCHEMES:
        raise ConfigError(
            f"storage {redact(url)!r} is not a storage URL; use sqlite:///FILE, "
            "postgresql://USER:PASSWORD@HOST/DB or journal:FILE."
        )
    if scheme == "sqlite" and not url.startswith("sqlite:///"):
        raise ConfigError(f"storage {redact(url)!r}: a SQLite URL needs three slashes, e.g. sqlite:///autolambda.db.")
    if scheme.startswith("postgresql") and not parts.hostname and "host=" not in parts.query:
        raise ConfigError(f"storage {redact(url)!r} names no host; e.g. postgresql://user@127.0.0.1:5432/optuna.")


def check_stores_usable(storage: str, tracking_uri: str | None = None, *, folders: Sequence[Path] = ()) -> None:
    """Raise ``ConfigError`` (one line) unless every store can be used: a SQLite or journal
    file whose folder exists and takes new files, a server that answers on its port, and
    each of ``folders`` (reports) creatable. Leaves nothing behind (a probe file is
    created and removed) and imports neither Optuna, MLflow nor TensorFlow, so ``tune``
    runs it before it creates any store: a bad second store then leaves no first one.
    A server reached through a Unix socket or an HTTP proxy is left to its client."""
    for label, url in (("storage", storage), ("tracking URI", tracking_uri)):
        if not url:
            continue
        if url.startswith("journal:"):
            _check_file_store(label, url, Path(url[len("journal:"):]))
        elif url.startswith("sqlite:///"):
            rest = url[len("sqlite:///"):].split("?", 1)[0]
            if rest and not rest.startswith(":memory:"):
                _check_file_store(label, url, Path(rest))
        else:
            parts = urlsplit(url)
            scheme = parts.scheme.lower()
            try:
                port = parts.port or next((p for s, p in DEFAULT_PORTS.items() if scheme.startswith(s)), None)
            except ValueError:
                raise ConfigError(f"{label} {redact(url)!r} has an invalid port; use HOST:PORT with a port in 1..65535.") from None
            via_socket = any(key in parts.query for key in ("host=", "unix_socket="))
            via_proxy = scheme.startswith("http") and _proxied(parts.hostname or "")
            if parts.hostname and port and not via_socket and not via_proxy:
                _check_reachable(label, url, parts.hostname, port)
    for folder in folders:
        existing = Path(folder).resolve()
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not existing.is_dir() or not _takes_files(existing):
            raise ConfigError(f"cannot write the report folder {folder}: {existing} is not a writable folder.")


DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "https": 443, "http": 80}


def _proxied(host: str) -> bool:
    """Whether HTTP clients (MLflow's) would reach ``host`` through a proxy."""
    import urllib.request

    return bool(urllib.request.getproxies()) and not urllib.request.proxy_bypass(host)


def _takes_files(folder: Path) -> bool:
    """Whether a new file can be created in ``folder`` (tried, not guessed from mode
    bits: a read-only mount ignores them, and root ignores a folder's mode)."""
    import os
    import tempfile

    try:
        fd, name = tempfile.mkstemp(prefix=".autolambda-check-", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def _check_file_store(label: str, url: str, path: Path) -> None:
    path = path.expanduser().resolve()
    folder = path.parent
    if path.is_dir():
        raise ConfigError(f"{label} {redact(url)!r}: {path} is a folder; name a file in it.")
    if not folder.is_dir():
        raise ConfigError(f"{label} {redact(url)!r}: the folder {folder} does not exist; create it or choose another path.")
    # SQLite writes a journal beside its file, so the folder must take new files even
    # when the database already exists.
    if not _takes_files(folder) or (path.exists() and not _writable_file(path)):
        raise ConfigError(f"{label} {redact(url)!r}: cannot write in {folder} (read-only or no permission); "
                          "choose a writable folder.")


def _writable_file(path: Path) -> bool:
    try:
        with open(path, "r+b"):
            return True
    except OSError:
        return False


def _check_reachable(label: str, url: str, host: str, port: int, timeout: float = 3.0) -> None:
    """A server down is not bad input (exit 1, not 2), but it is found before anything starts."""
    import socket

    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        store = "Optuna storage" if label == "storage" else "MLflow tracking store"
        raise AutolambdaError(f"{store} {redact(url)} is not reachable: nothing answers on {host}:{port} ({reason}); "
                              "is the server running?") from None


def check_tracking_uri(uri: str) -> None:
    """Raise ``ConfigError`` unless ``uri`` is an MLflow tracking URI this tool can use."""
    if not isinstance(uri, str) or not uri:
        raise ConfigError(f"tracking_uri must be a URI such as sqlite:///mlflow.db but got {uri!r}.")
    scheme = urlsplit(uri).scheme.lower()
    allowed = ("sqlite", "postgresql", "postgresql+psycopg", "postgresql+psycopg2", "mysql", "http", "https", "databricks")
    if scheme not in allowed or "://" not in uri and scheme != "databricks":
        raise ConfigError(
            f"tracking URI {redact(uri)!r} is not supported; use sqlite:///mlflow.db, http://HOST:PORT "
            "or postgresql://... (MLflow 3.13+ refuses a plain ./mlruns folder)."
        )
    if scheme == "sqlite" and not uri.startswith("sqlite:///"):
        raise ConfigError(f"tracking URI {redact(uri)!r}: a SQLite URI needs three slashes, e.g. sqlite:///mlflow.db.")


def redact(url: str) -> str:
    """``url`` with any password replaced by ``***`` (safe to log and print).

    Example:
        >>> redact("postgresql://al:secret@127.0.0.1/optuna")
        'postgresql://al:***@127.0.0.1/optuna'
    """
    if not isinstance(url, str):
        return repr(url)
    try:
        parts = urlsplit(url)
    except ValueError:
        return "<unparseable URL>"
    out = url
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        out = parts._replace(netloc=netloc).geturl()
    import re

    # libpq-style password=... in query strings
    return re.sub(r"(password=)[^&;\s]+", r"\1***", out, flags=re.IGNORECASE)


def short_error(exc: BaseException) -> str:
    """The first line of an exception's message, secrets redacted, at most 300 characters."""
    lines = redact(str(exc)).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:300]
