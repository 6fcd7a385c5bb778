"""Hidden checks called from the lessons' hidden test cells.

Only the grading of handed-in checkpoints on held-out test reviews is left (lessons 05, 07).
Every graded function is checked in the grader's process on cases the kernel never sees
(``integrity_*``).
"""

from rnncourse_grader.hidden.imdb import grade_finetuned_checkpoint, grade_imdb_checkpoint

__all__ = ["grade_finetuned_checkpoint", "grade_imdb_checkpoint"]
