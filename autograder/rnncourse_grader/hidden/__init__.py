"""Hidden checks called from the lessons' hidden test cells.

Only one is left: lesson 05's grading of the handed-in checkpoint on held-out test reviews.
Every graded function is checked in the grader's process on cases the kernel never sees
(``integrity_*``).
"""

from rnncourse_grader.hidden.imdb import grade_imdb_checkpoint

__all__ = ["grade_imdb_checkpoint"]
