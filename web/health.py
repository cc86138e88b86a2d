"""``/health``: is the process up and does the database answer (for load balancers)."""
from flask import Blueprint, jsonify

bp = Blueprint('health', __name__)


@bp.get('/health')
def health():
    from .app import services

    ok = services().pool.ping()
    return jsonify(status='ok' if ok else 'degraded', database=ok), 200 if ok else 503
