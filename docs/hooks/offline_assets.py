"""MkDocs hook: MathJax is served from the site itself, so that the built pages render maths with no network.

MathJax comes from the ``django-static-mathjax`` package (in the ``docs`` extra; it holds MathJax's files and
depends on nothing). Its single-file TeX-to-SVG build, ``es5/tex-svg.js``, needs no fonts or other files; it is
added to the site as ``javascripts/mathjax/tex-svg.js``, where ``mkdocs.yml`` loads it.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from mkdocs.structure.files import File, Files

SITE_PATH = "javascripts/mathjax/tex-svg.js"


def mathjax_script() -> Path:
    """The installed ``tex-svg.js``; an error says how to install it."""
    spec = importlib.util.find_spec("mathjax")
    roots = list(spec.submodule_search_locations or []) if spec else []
    for root in roots:
        path = Path(root) / "static" / "mathjax" / "es5" / "tex-svg.js"
        if path.is_file():
            return path
    raise FileNotFoundError(
        "MathJax for the docs is not installed: pip install -e '.[docs]' (it brings django-static-mathjax)"
    )


def on_files(files: Files, config) -> Files:
    files.append(File.generated(config, SITE_PATH, abs_src_path=str(mathjax_script())))
    return files
