"""Sphinx settings for the book (``make book``); the pages come from ``book/build.py``'s staging."""

import reclib

reclib.quiet()   # autodoc imports every module: TensorFlow's start-up logs off, as in the notebooks

project = "reclib"
author = "reclib contributors"
html_title = "reclib: recommender systems in the age of large language models"

extensions = [
    "myst_nb",                       # notebooks and Markdown (MyST), outputs as stored
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx-mathjax-offline",        # MathJax from the package, not a CDN: the book works offline
]

# render the outputs stored by `make notebooks`; never execute a notebook here
nb_execution_mode = "off"
nb_ipywidgets_js = {}                # no widget scripts from a CDN (the notebooks use no widgets)
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
suppress_warnings = ["myst.header", "myst.xref_missing", "mystnb.unknown_mime_type", "misc.highlighting_failure"]

# the API reference: every public name (a module's __all__) with its signature and docstring
autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "signature"
autodoc_member_order = "bysource"
napoleon_numpy_docstring = False

html_theme = "sphinx_book_theme"
html_theme_options = {
    "show_toc_level": 2,
    "use_download_button": False,
    "use_fullscreen_button": False,
    "navigation_with_keys": False,
}
html_static_path = ["_static"]
html_css_files = ["book.css"]
html_favicon = "_static/favicon.svg"   # else the browser asks for /favicon.ico and logs a 404
html_context = {"default_mode": "light"}
html_show_sourcelink = False
html_last_updated_fmt = None
exclude_patterns = ["_build", "**.ipynb_checkpoints"]


def _skip_reexports(app, what, name, obj, skip, options):
    """Document a class or function on its own package's page only: ``reclib.models`` re-exports
    ``reclib.features``' feature declarations, which would otherwise be described twice."""
    page_module = app.env.ref_context.get("py:module") or ""
    owner = getattr(obj, "__module__", None)
    if what == "module" and page_module and isinstance(owner, str) and not owner.startswith(page_module):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_reexports)
