"""The portal: home page, search, observation pages with pictures and downloads.

``bp`` (name ``portal``) carries the pages (`views`, `observation`) and the
error pages of the whole site. Modules: `search` (the form, its SQL and
ADQL; pure), `records` (reads as the viewer), `summary` (what the pages say;
pure), `pictures` (PNG rendering; pure), `cache` (rendered pictures on disk),
`zipstream` (streamed zip downloads).
"""
from flask import Blueprint

__all__ = ['bp']

bp = Blueprint('portal', __name__)

# Imported for their routes, which register on bp.
from . import observation, summary, views  # noqa: E402,F401

views.register_error_pages(bp)


@bp.app_template_filter('mjd_utc')
def _mjd_utc(mjd):
    return summary.mjd_utc(mjd)


@bp.app_template_filter('filesize')
def _filesize(n_bytes):
    return summary.filesize(n_bytes)
