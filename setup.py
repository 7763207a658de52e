"""Which packages the wheel holds: found, not listed, so a new subpackage cannot be left out.

Every package under mgctag/, beets' namespace package `beetsplug` (no __init__.py: beets loads
beetsplug/mgctag.py for `plugins: mgctag`), and `mgctag.shipped`, which is the repository's
weights/ folder (pyproject.toml's package-dir). Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

setup(packages=find_packages(include=["mgctag", "mgctag.*"]) + ["beetsplug", "mgctag.shipped"])
