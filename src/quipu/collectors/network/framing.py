"""The inspection script's framing: each command's output and exit status, split apart."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator


@dataclasses.dataclass(frozen=True, slots=True)
class Section:
    """What one command printed (standard output, without the final newline) and its exit
    status."""

    name: str
    output: str
    status: int

    @property
    def ok(self) -> bool:
        return self.status == 0

    def lines(self) -> list[str]:
        return self.output.splitlines()


Sections = dict[str, Section]


def parse_sections(text: str, *, marker: str) -> Sections:
    """Split the script's output into sections.

    Only lines that begin with the run's marker frame a section. A section that began but
    never ended (its shell was killed) is dropped; when a name appears twice, the first
    complete section wins: the privileged run comes before its unprivileged fallback.
    """
    begin = f"{marker} begin "
    end = f"{marker} end "
    sections: Sections = {}
    name: str | None = None
    lines: list[str] = []
    for line in text.split("\n"):
        if line.startswith(begin):
            name, lines = line[len(begin) :].strip(), []
            continue
        if name is None:
            continue
        if line.startswith(end):
            closed, _, status = line[len(end) :].rpartition(" ")
            if closed == name and status.lstrip("-").isdigit():
                # The framing prints a newline before the end line; drop it.
                if lines and lines[-1] == "":
                    lines.pop()
                sections.setdefault(name, Section(name, "\n".join(lines), int(status)))
                name = None
                continue
        lines.append(line)
    return sections


def succeeded(section: Section | None) -> Section | None:
    return section if section is not None and section.ok else None


def subframes(section: Section, *, marker: str) -> Iterator[tuple[list[str], list[str]]]:
    """The ``<marker> file <words...>`` frames inside a section: their words and lines."""
    prefix = f"{marker} file "
    words: list[str] | None = None
    lines: list[str] = []
    for line in section.lines():
        if line.startswith(prefix):
            if words is not None:
                yield words, lines
            words, lines = line[len(prefix) :].split(" ", 1), []
        elif words is not None:
            lines.append(line)
    if words is not None:
        yield words, lines
