"""What management commands print: sizes, ages and counts in words, and a
:class:`Report` (plain text in a terminal, an HTML table in a notebook)."""

from __future__ import annotations


def plural(n: int, one: str, many: str | None = None) -> str:
    """``1 entry``, ``2 entries``."""
    return f"{n} {one if n == 1 else many or one + 's'}"


def human_size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def human_age(seconds: float | None) -> str:
    if seconds is None:
        return "never"
    seconds = max(seconds, 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.0f}{unit} ago"
    return f"{seconds:.0f}s ago"


class Report:
    """A titled table (or just a title): ``text()`` and ``html()``."""

    def __init__(self, title: str, columns=(), rows=(), footer: str = ""):
        self.title, self.columns, self.rows, self.footer = title, list(columns), [list(r) for r in rows], footer

    def text(self) -> str:
        lines = [self.title]
        if self.columns and self.rows:
            cells = [self.columns] + [[str(c) for c in r] for r in self.rows]
            widths = [max(len(r[i]) for r in cells) for i in range(len(self.columns))]
            for r in cells:
                lines.append("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if self.footer:
            lines.append(self.footer)
        return "\n".join(lines)

    def html(self) -> str:
        import html

        esc = html.escape
        parts = [f"<p>{esc(self.title)}</p>"]
        if self.columns and self.rows:
            head = "".join(f"<th>{esc(c)}</th>" for c in self.columns)
            body = "".join("<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in r) + "</tr>" for r in self.rows)
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")
        if self.footer:
            parts.append(f"<p>{esc(self.footer)}</p>")
        return "".join(parts)

    def bundle(self) -> dict:
        return {"text/plain": self.text(), "text/html": self.html()}

    def __str__(self):
        return self.text()


class Lines(Report):
    """Prose, a line each (``%lazycache why``): preformatted in HTML, so a
    code diff keeps its indentation."""

    def __init__(self, lines):
        super().__init__("\n".join(lines))

    def html(self) -> str:
        import html

        return f"<pre>{html.escape(self.text())}</pre>"


def removed_report(verb: str, removed, store) -> Report:
    """What a prune or clear removed (a :class:`.manage.Removed`), in one line."""
    temps = f" and {plural(removed.temps, 'stale temp file')}" if removed.temps else ""
    n = plural(len(removed.keys), "entry", "entries")
    return Report(f"{verb} {n} ({human_size(removed.bytes)}){temps} from {_where(store)}")


def verify_report(bad, fixed: bool, store, skipped=()) -> Report:
    wait = (f"; {plural(len(skipped), 'entry', 'entries')} without a manifest, younger than an hour "
            "(perhaps still being stored), not checked") if skipped else ""
    if not bad:
        return Report(f"all {'other ' if skipped else ''}entries verified in {_where(store)}{wait}")
    verb = "removed" if fixed else "found"
    return Report(
        f"{verb} {plural(len(bad), 'bad entry', 'bad entries')} in {_where(store)}"
        + ("" if fixed else f" (--fix removes {'it' if len(bad) == 1 else 'them'})") + wait,
        ["key", "problem"], [[k[:10], p] for k, p in bad],
    )


def stats_report(stats: dict) -> Report:
    rows = [
        ["hits", stats.get("hits", 0)],
        ["misses", stats.get("misses", 0)],
        ["bytes restored", human_size(stats.get("bytes_restored", 0))],
        ["time saved", f"{stats.get('time_saved', 0.0):.2f} s"],
    ]
    return Report("lazycache: this session", ["statistic", "value"], rows)


def _where(store) -> str:
    return store.describe()
