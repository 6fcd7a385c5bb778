# Google Colab only. There, this cell installs the course's helper package `rnncourse` with its
# pinned dependencies (the runtime keeps its own CUDA build of torch); anywhere else, and
# whenever a notebook is graded, it does nothing. This lesson's data, if it has any, are
# downloaded later by its own loader (rnncourse.data, checksum verified). The cell is the same
# in every lesson and written by `course release`: leave it as it is.
_HOSTED = {}  # `course release` writes the package, constraints and dependencies here


def _hosted_runtime():
    """The hosted service this kernel runs on, or '' (always '' while nbgrader runs a notebook).

    Google Colab sets COLAB_RELEASE_TAG in its runtime's environment and loads google.colab in
    its kernels.
    """
    import os
    import sys

    if "NBGRADER_EXECUTION" in os.environ:
        return ""
    if "COLAB_RELEASE_TAG" in os.environ or "google.colab" in sys.modules:
        return "Google Colab"
    return ""


def _hosted_sources(hosted):
    """(package, constraints) to install: the course's repository, or the course folder that
    RNNCOURSE_INSTALL_SOURCE names (a clone of the repository or an unpacked student bundle)."""
    import os
    from pathlib import Path

    folder = os.environ.get("RNNCOURSE_INSTALL_SOURCE")
    if not folder:
        return hosted["package"], hosted["constraints"]
    course = Path(folder).expanduser().resolve()
    return str(course / "lessons"), str(course / "constraints.txt")


def _hosted_version(dist):
    """The installed version of a distribution, or None."""
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _hosted_imported():
    """Distribution -> version, for the distributions whose modules this kernel has imported."""
    import sys
    from importlib import metadata

    owners = metadata.packages_distributions()
    return {d: _hosted_version(d) for m in owners if m in sys.modules for d in owners[m]}


def _hosted_pip(*args):
    """``pip install`` into this kernel's interpreter; raise with pip's output if it fails."""
    import subprocess
    import sys

    command = [sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
    done = subprocess.run([*command, *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"pip install {' '.join(args)} failed:\n{done.stdout}{done.stderr}")


def _hosted_setup(hosted):
    """Install ``rnncourse`` on a hosted runtime; say what to do next."""
    import importlib

    runtime = _hosted_runtime()
    if not runtime:
        print("Not on a hosted runtime: nothing to install here.")
        return
    package, constraints = _hosted_sources(hosted)
    imported = _hosted_imported()
    print(f"{runtime}: installing the course's helper package from {package} ...")
    _hosted_pip("--constraint", constraints, *hosted["dependencies"])
    _hosted_pip("--no-deps", "--ignore-requires-python", package)
    importlib.invalidate_caches()
    changed = sorted(d for d, v in imported.items() if _hosted_version(d) != v)
    if changed:
        print(
            f"Installed, but {', '.join(changed)} changed after this session imported it: "
            "Runtime -> Restart session, then run the notebook again from this cell."
        )
    else:
        print(f"rnncourse {_hosted_version('rnncourse')} is installed: go on with the lesson.")


_hosted_setup(_HOSTED)
