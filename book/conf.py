"""Sphinx settings for the book (``make book``); the pages come from ``book/build.py``'s staging."""

import sys

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
# MyST-NB cannot render reclib's record outputs (application/vnd.reclib.*, an empty text part
# beside them): they are meant to show nothing, and each notebook's end has the table instead
suppress_warnings = ["mystnb.unknown_mime_type",
                     "misc.highlighting_failure"]   # the README's mermaid diagram stays a code block

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
html_copy_source = False             # the site holds pages, not a second copy of every notebook
html_last_updated_fmt = None
exclude_patterns = ["_build", "**.ipynb_checkpoints"]


def _exported_above(module: str, name: str) -> bool:
    """Whether a package above ``module`` lists ``name`` in its ``__all__`` (and so documents it)."""
    parts = module.split(".")
    return any(name in getattr(sys.modules.get(".".join(parts[:i])), "__all__", ())
               for i in range(1, len(parts)))


def _skip_reexports(app, what, name, obj, skip, options):
    """Describe each class and function once: on its own package's page (``reclib.models``
    re-exports ``reclib.features``' feature declarations), and on a module's page only when no
    package above it already lists it."""
    page_module = app.env.temp_data.get("autodoc:module") or app.env.ref_context.get("py:module") or ""
    owner = getattr(obj, "__module__", None)
    if what == "module" and page_module and isinstance(owner, str) and not owner.startswith(page_module):
        return True
    if what == "module" and page_module and _exported_above(page_module, name):
        return True
    return None


def setup(app):
    app.connect("autodoc-skip-member", _skip_reexports)
