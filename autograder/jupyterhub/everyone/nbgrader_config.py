"""nbgrader settings for every person's own Jupyter server: students and instructors alike.

On JupyterHub the course's hub config puts this folder on each user's JUPYTER_CONFIG_PATH; on
a lab server without a hub, copy this file to ``/etc/jupyter/nbgrader_config.py``. A student
needs only this: which course, where the exchange is, and who they are. The instructor's
grading settings (course directory, gradebook) are in ``autograder/nbgrader_config.py``,
which overrides these when nbgrader runs from ``autograder/``.
"""

import os

c = get_config()  # noqa: F821

c.CourseDirectory.course_id = "rnn-course"
# Shared by everyone and writable by everyone (mode 1777): see autograder/jupyterhub/README.md.
c.Exchange.root = os.environ.get("RNNCOURSE_EXCHANGE", "/srv/nbgrader/exchange")
# Submissions are filed under the hub user's name. (nbgrader itself takes the OS account's
# name, which is the same on a lab server with one account per person, but not where every
# server runs under one account, as in containers or with a test spawner.)
if os.environ.get("JUPYTERHUB_USER"):
    c.CourseDirectory.student_id = os.environ["JUPYTERHUB_USER"]
