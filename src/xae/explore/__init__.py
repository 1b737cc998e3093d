"""The latent explorer (``xae explore``): a local web page over one or more runs.

:mod:`runs` computes what is shown of a run, :mod:`sweep` of a sweep folder (its runs in the
order of the swept values, each map aligned to its neighbour's), :mod:`site` lays the files
out, :mod:`server` serves them with a decode endpoint, :mod:`runtime` finds onnxruntime-web,
and ``static/`` is the page itself.
"""
from xae.explore.runs import RunView, load_run
from xae.explore.server import make_server
from xae.explore.site import build_site, write_static

__all__ = ["RunView", "load_run", "make_server", "build_site", "write_static"]
