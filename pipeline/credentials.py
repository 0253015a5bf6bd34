"""A URI's ``user:password``, kept out of everything this project writes or prints.

Every URI a command accepts (``tracking.uri`` from the command line, a config file or
``$MLFLOW_TRACKING_URI``; ``--tracking-uri`` of report, explain, promote and relog) goes through
``take``: the userinfo moves into the environment and the URI goes on without it. Whatever is
printed or written that might still hold one (an error line, a Hydra file written before the job
ran) goes through ``mask``.

Users write passwords unescaped, ``/`` and ``@`` included, and schemes in capitals, so the
userinfo is everything between ``://`` and the *last* ``@`` of the URI, and the scheme is matched
in any case. (A URI whose path holds an ``@`` is masked too much, never too little.) A scheme
whose authority is empty (``sqlite:///path``) has no userinfo.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import quote, unquote

#: A database URI's user:password, taken out of the URI; ``put_back`` returns it where MLflow needs it.
USERINFO_ENV = "IMBALANCE_LAB_STORE_USERINFO"
#: The whole value is a URI with userinfo: scheme, userinfo up to the last '@', the rest.
_URI = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://)([^/][^\s]*)@([^@\s]*)$", re.DOTALL)
#: Such a URI inside a longer text (an error line, a YAML file, a page): up to the last '@' of the word.
_IN_TEXT = re.compile(r"""([A-Za-z][A-Za-z0-9+.-]*://)[^/\s'"<>`][^\s'"<>`]*@""")
_QUOTES = ("'", '"')


def split(uri: str) -> tuple[str, str | None]:
    """(``uri`` without its userinfo and with its scheme in lower case, the userinfo or None).
    A value in Hydra's quotes (``"http://u:pw@h"``) keeps its quotes."""
    quote_char = uri[0] if len(uri) > 1 and uri[0] in _QUOTES and uri[-1] == uri[0] else ""
    inner = uri[1:-1] if quote_char else uri
    found = _URI.match(inner)
    if not found:
        return uri, None
    scheme, userinfo, rest = found.groups()
    return f"{quote_char}{scheme.lower()}{rest}{quote_char}", userinfo


def take(uri: object) -> object:
    """``uri`` without its userinfo, which moves into the environment: MLflow's own
    ``MLFLOW_TRACKING_USERNAME`` and ``MLFLOW_TRACKING_PASSWORD`` for a server, and
    ``$IMBALANCE_LAB_STORE_USERINFO`` for a database (``put_back`` returns it). Launcher workers
    inherit the environment. Anything that is not a string comes back as it is."""
    if not isinstance(uri, str):
        return uri
    clean, userinfo = split(uri)
    if userinfo is None:
        return uri
    user, _, password = userinfo.partition(":")
    if clean.strip("'\"").startswith(("http://", "https://")):
        os.environ["MLFLOW_TRACKING_USERNAME"] = unquote(user)
        os.environ["MLFLOW_TRACKING_PASSWORD"] = unquote(password)
    else:  # escaped once here, whatever the user escaped, so the database driver parses it
        os.environ[USERINFO_ENV] = quote(unquote(user), safe="") + ":" + quote(unquote(password), safe="")
    return clean


def taken(uri: str) -> str:
    """``take`` for an argparse ``type=``: the option's value never holds a password."""
    return str(take(uri))


def put_back(uri: str) -> str:
    """A database URI with the userinfo ``take`` set aside (a server's goes by MLflow's variables)."""
    userinfo = os.environ.get(USERINFO_ENV)
    if not userinfo or uri.startswith(("http", "sqlite")) or split(uri)[1] is not None or "://" not in uri:
        return uri
    scheme, _, rest = uri.partition("://")
    return f"{scheme}://{userinfo}@{rest}"


def mask(text: str) -> str:
    """``text`` with the userinfo of every URI in it removed."""
    return _IN_TEXT.sub(r"\1", text)


def scrub(path: Path) -> None:
    """Rewrite a file that holds a URI with a userinfo (a Hydra file written before the job could
    take it), replacing it whole so that no reader sees it half-written."""
    try:
        text = path.read_text()
    except (FileNotFoundError, UnicodeDecodeError):
        return
    clean = mask(text)
    if clean != text:
        part = path.with_name(f".{path.name}.{os.getpid()}.part")
        part.write_text(clean)
        part.replace(path)
