"""``ipy-lazycache``: manage a cache folder from the shell.

Subcommands are registered in :data:`COMMANDS` by :func:`command`; adding
one is a function plus a decorator. The same parser serves the
``%lazycache`` line magic (see :func:`parse`).

Exit codes: 0 ok, 1 ``verify`` found bad entries, 2 bad input.
"""

from __future__ import annotations

import argparse
import os
import sys

from . import manage, reports
from .manage import BadInput

#: name -> (configure(subparser), run(args) -> (Report, exit code), help, aliases)
COMMANDS: dict = {}


def command(name, help, aliases=()):
    def wrap(configure):
        def register(run):
            COMMANDS[name] = (configure, run, help, tuple(aliases))
            return run

        return register

    return wrap


class _Parser(argparse.ArgumentParser):
    """Errors are one line, raised as :class:`BadInput` (no usage dump, no exit)."""

    def error(self, message):
        raise BadInput(f"{self.prog}: {message}")

    def exit(self, status=0, message=None):  # --help (the magic catches it: see magics)
        if message:
            sys.stderr.write(message)
        raise SystemExit(status)


def _size(text):
    try:
        return manage.parse_size(text)
    except BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _age(text):
    try:
        return manage.parse_age(text)
    except BadInput as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_dir(p):
    p.add_argument("--dir", default=None, help="cache folder (default: $IPY_LAZYCACHE_DIR or __lazycache__)")


def _no_args(p):
    _add_dir(p)


def _dir(args) -> str:
    from .platform import cache_dir

    return cache_dir(getattr(args, "dir", None) or getattr(args, "default_dir", None) or None)


def _remote(where: str) -> bool:
    return "://" in where and not where.startswith(("http://", "https://"))


def _store(args):
    """The store ``--dir`` names. A shared store's URL is checked first (a
    missing package or folder is one line); ``file://`` is a local folder."""
    from .stores import preflight

    where = _dir(args)
    if _remote(where):
        path = preflight.local_path(where)
        if path is not None:
            return manage.open_store(path)
        why = preflight.problem(where)
        if why:
            raise BadInput(why)
    return manage.open_store(where)


@command("info", "list entries: size, age, last hit, defs, first line", aliases=("ls",))(_no_args)
def _info(args):
    return manage.info_report(_store(args)), 0


@command("du", "total size of the cache")(_no_args)
def _du(args):
    return manage.du_report(_store(args)), 0


def _prune_args(p):
    _add_dir(p)
    p.add_argument("--max-size", type=_size, default=None, metavar="SIZE",
                   help="shrink to this size, least recently used first (e.g. 2G)")
    p.add_argument("--older-than", type=_age, default=None, metavar="AGE",
                   help="remove entries not used for this long (e.g. 30d)")


@command("prune", "remove least recently used entries and leftovers")(_prune_args)
def _prune(args):
    store = _store(args)
    return reports.removed_report("pruned", manage.prune(store, args.max_size, args.older_than), store), 0


@command("clear", "remove every entry")(_no_args)
def _clear(args):
    store = _store(args)
    return reports.removed_report("removed", manage.clear(store), store), 0


def _verify_args(p):
    _add_dir(p)
    p.add_argument("--fix", action="store_true", help="remove the bad entries")


@command("verify", "check every digest and signature")(_verify_args)
def _verify(args):
    from . import signing

    store = _store(args)
    signer = getattr(args, "signer", None)
    if signer is None:
        try:
            signer = signing.from_config()
        except signing.SigningError as exc:
            raise BadInput(str(exc)) from None
    skipped: list = []
    bad = manage.verify(store, fix=args.fix, signer=signer, skipped=skipped)
    return reports.verify_report(bad, args.fix, store, skipped), (1 if bad and not args.fix else 0)


def _export_args(p):
    from .export import configure

    configure(p)


@command("export", "copy the entries notebooks use (their export lists) to another folder, verified")(_export_args)
def _export(args):
    from . import signing
    from .export import run_command

    _check_export_inputs(args)
    try:
        return run_command(args)
    except signing.SigningError as exc:
        raise BadInput(str(exc)) from None


def _check_export_inputs(args):
    """Bad paths are one line (exit 2), not a traceback from deep inside."""
    import json
    from pathlib import Path

    dest = Path(args.dest)
    if dest.exists() and not dest.is_dir():
        raise BadInput(f"export: {dest} is a file, not a folder")
    if args.notebook:
        try:
            nb = json.loads(Path(args.notebook).read_bytes().decode("utf-8"))
        except FileNotFoundError:
            return  # run_command says "no notebook at ..."
        except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not a UTF-8 JSON notebook"
            raise BadInput(f"export: cannot read {args.notebook} ({reason})") from None
        cells = nb.get("cells", []) if isinstance(nb, dict) else None
        if not isinstance(cells, list) or not all(_is_cell(c) for c in cells):
            raise BadInput(f"export: {args.notebook} is not a notebook (no list of cells)")


def _is_cell(cell) -> bool:
    source = cell.get("source", "") if isinstance(cell, dict) else None
    return isinstance(source, str) or isinstance(source, list) and all(isinstance(x, str) for x in source)


def _keygen_args(p):
    p.description = ("Write a new Ed25519 private key to PATH (mode 0600) and its public key to PATH.pub, "
                     "and print the fingerprint readers trust. Needs the cryptography package.")
    p.add_argument("path", help="file for the private key (never replaced)")


@command("keygen", "make an Ed25519 signing key; print the fingerprint readers trust")(_keygen_args)
def _keygen(args):
    from . import ed25519, signing

    try:
        key = ed25519.generate(args.path)
    except ed25519.BadKey as exc:
        raise BadInput(f"keygen: {exc}") from None
    return reports.Report(
        f"wrote {args.path} (the private key: keep it secret) and {args.path}.pub\n"
        f"sign with:   {signing.PRIVATE_ENV}={os.path.abspath(args.path)}\n"
        f"trust with:  {signing.TRUSTED_ENV}={key.fingerprint}"), 0


def _why_args(p):
    p.description = ("Each cached cell of NOTEBOOK and its entry in the cache folder (default: the notebook's "
                     "__lazycache__ folder); with CELL_ID (a cell id, or a number from 1), what changed between "
                     "its entries and whether the notebook's code is still the entry's.")
    p.add_argument("notebook", help="the .ipynb file")
    p.add_argument("cell", nargs="?", default=None, metavar="CELL_ID", help="a cell id, or a number from 1")
    p.add_argument("--dir", default=None, help="cache folder (default: the notebook's __lazycache__ folder)")


@command("why", "NOTEBOOK [CELL_ID]: each cached cell's entry and what changed between entries "
                "(in %%lazycache: why [CELL_ID], this session's cells)")(_why_args)
def _why(args):
    from .why_notebook import report

    return report(args.notebook, args.dir or getattr(args, "default_dir", None), args.cell), 0


def _lite_pyodide_args(p):
    p.add_argument("lite_dir", help="JupyterLite lite dir to make self-contained (local Pyodide, no CDN)")
    p.add_argument("--wheel", action="append", default=[], help="local wheel for the piplite index (repeatable)")
    p.add_argument("--package", action="append", default=None, help="extra Pyodide package, NAME or NAME==VER")


@command("lite-pyodide",
         "make a JupyterLite lite dir self-contained (Pyodide from npm, wheels from PyPI)")(_lite_pyodide_args)
def _lite_pyodide(args):
    from . import offline_pyodide as op

    op.prepare(args.lite_dir, args.wheel, args.package or op.DEFAULT_PACKAGES)
    return reports.Report(f"prepared {args.lite_dir} (Pyodide {op.PYODIDE_VERSION}, no CDN)"), 0


def build_parser(prog="ipy-lazycache", extra=()) -> argparse.ArgumentParser:
    """The parser; ``extra`` names more subcommands (e.g. the magic's ``stats``)."""
    from .version import __version__

    parser = _Parser(prog=prog, description="Manage an ipy_lazycache cache folder.")
    parser.add_argument("--version", action="version", version=f"ipy_lazycache {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True
    for name, (configure, run, help_, aliases) in COMMANDS.items():
        # An alias is a parser of its own, so that `ls --help` says `ls`; listed once, under the name.
        for alias in (name, *aliases):
            listed = {"help": help_ + "".join(f" (or: {a})" for a in aliases)} if alias == name else {}
            p = sub.add_parser(alias, **listed)
            configure(p)
            p.set_defaults(run=run)
    for name, help_ in extra:
        sub.add_parser(name, help=help_).set_defaults(run=None)
    return parser


def parse(argv, prog="ipy-lazycache", extra=()) -> argparse.Namespace:
    """Parse arguments; raises :class:`BadInput` with one line on bad input."""
    return build_parser(prog, extra).parse_args(argv)


def run(args) -> tuple:
    """Run parsed arguments: ``(Report, exit code)``; raises BadInput, also
    for a shared store that cannot be used (no credentials, no bucket, no
    network): that is the user's setting, not a crash."""
    try:
        return args.run(args)
    except BadInput:
        raise
    except Exception as exc:
        where = _dir(args) if hasattr(args, "dir") else ""
        if not _remote(where):
            raise
        detail = " ".join(str(exc).split())[:200]
        raise BadInput(f"{where}: the store cannot be used ({type(exc).__name__}{': ' + detail if detail else ''})"
                       "; check the URL, your credentials and the network") from None


def main(argv=None) -> int:
    try:
        args = parse(sys.argv[1:] if argv is None else list(argv))
        report, code = run(args)
    except BadInput as exc:
        msg = str(exc)
        print(msg if msg.startswith("ipy-lazycache") else f"ipy-lazycache: {msg}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"ipy-lazycache: {exc.strerror or exc}: {exc.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    print(report.text())
    return code


if __name__ == "__main__":
    sys.exit(main())
