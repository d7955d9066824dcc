"""Table writers shared by both tracks' reports."""

from __future__ import annotations


def markdown_table(columns, rows) -> str:
    """A Markdown table of ``columns`` and ``rows`` of already formatted cells."""
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
