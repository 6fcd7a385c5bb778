"""Jupyter server settings for the course's grader service (the formgrader) on JupyterHub."""

c = get_config()  # noqa: F821

# JupyterHub forbids framing single-user servers (CSP frame-ancestors 'none'); JupyterLab
# shows the formgrader in an iframe of the same server, so allow framing by itself only.
c.ServerApp.tornado_settings = {"headers": {"Content-Security-Policy": "frame-ancestors 'self'"}}
