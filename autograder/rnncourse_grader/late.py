"""Late submissions: nbgrader's own late-penalty plugin, applied to a submission's final scores.

nbgrader records a submission's time from ``timestamp.txt`` and its lateness against the
assignment's ``duedate`` in the gradebook (``nbgrader db assignment add ID --duedate=...``);
its ``AssignLatePenalties`` preprocessor asks the configured plugin for a penalty
(``c.LateSubmissionPlugin.penalty_method = "zero"``, or ``c.AssignLatePenalties.plugin_class``
for one of the course's own) and keeps it between 0 and the notebook's score.

It runs inside autograde, before the integrity pass may take points back, and in a worker's
private gradebook. ``assess`` applies the same plugin, with the same bounds, once the scores
are final: in the worker before its feedback page, and on the main gradebook when a result is
merged (where nbgrader's ``grades.csv`` reads it: ``raw_score``, ``late_submission_penalty``,
``score``).
"""

import dataclasses
import datetime as dt
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Lateness:
    seconds_late: float
    penalty: float  # points taken off the submission's score (0: none)


def plugin(config):
    """The late-penalty plugin the course configures (nbgrader's preprocessor builds it)."""
    from nbgrader.preprocessors import AssignLatePenalties

    preprocessor = AssignLatePenalties(config=config)
    preprocessor.init_plugin()
    return preprocessor.plugin_inst


def assess(gb, lesson: str, student: str, config) -> Lateness:
    """Set each notebook's late penalty of ``student``'s ``lesson`` from its current scores;
    the caller commits. Not late (or no due date, or no time): no penalty."""
    sub = gb.find_submission(lesson, student)
    seconds = float(sub.total_seconds_late)
    penalty = 0.0
    late_plugin = plugin(config) if seconds > 0 else None
    for nb in sub.notebooks:
        nb.late_submission_penalty = None
        if late_plugin is not None:
            points = late_plugin.late_submission_penalty(student, nb.score, seconds)
            if points is not None:  # nbgrader's bounds: never negative, never over the score
                nb.late_submission_penalty = min(max(float(points), 0.0), float(nb.score))
        penalty += nb.late_submission_penalty or 0.0
    return Lateness(seconds, penalty)


def due_dates(db: Path, lessons: list[str]) -> dict[str, dt.datetime | None]:
    """lesson -> its due date in the gradebook (naive UTC; None: none set, or no gradebook)."""
    from nbgrader.api import Gradebook, MissingEntry

    found: dict[str, dt.datetime | None] = dict.fromkeys(lessons)
    if not Path(db).is_file():
        return found
    with Gradebook(f"sqlite:///{db}") as gb:
        for lesson in lessons:
            try:
                found[lesson] = gb.find_assignment(lesson).duedate
            except MissingEntry:
                pass
    return found
