"""Grader-only code: hidden checks, the release pipeline and the ``course`` command.

Never released to students (the student bundle and lessons/ leave it out).
"""
