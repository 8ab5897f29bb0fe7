"""Sphinx configuration of rtrl's documentation: ``sphinx-build -W -b html docs docs/_build``."""

import rtrl

project = "rtrl"
author = "the rtrl developers"
release = version = rtrl.__version__
extensions = ["sphinx.ext.autodoc", "sphinx.ext.mathjax", "numpydoc"]
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_member_order = "bysource"
autodoc_typehints = "none"
exclude_patterns = ["_build"]
html_theme = "alabaster"
html_static_path: list = []
