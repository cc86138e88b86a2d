"""Processing runs in ``sphere.runs``: started, then done, failed or refused.

A run row is committed as ``running`` when the work starts, so a killed
process leaves a visible trace; it is closed as ``done`` in the same
transaction that registers the products, or as ``failed``/``refused`` with
its error. `settled_digests` tells ``--pending`` which inputs were already
handled.
"""
import datetime
import socket
import uuid

from .recipes import PIPELINE_VERSION, params_dict

__all__ = ["start_run", "finish_run", "settled_digests", "new_run_id"]


def _now():
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def new_run_id(recipe):
    """A unique run identifier: recipe name and a random suffix."""
    return f"{recipe.name}-{uuid.uuid4().hex[:16]}"


def start_run(conn, recipe, digest, *, sequence_id=None, run_id=None):
    """Insert a ``running`` run and commit it (outside any product transaction).

    Parameters
    ----------
    conn : `psycopg.Connection`
    recipe : `~reduction.recipes.Recipe`
    digest : str
        `~reduction.recipes.inputs_digest` of the run.
    sequence_id : str, optional
    run_id : str, optional
        Default `new_run_id`.

    Returns
    -------
    run : dict
        ``run_id``, ``started_at`` (naive UTC), ``t0`` (monotonic seconds).
    """
    import time

    from psycopg.types.json import Json

    run_id = run_id or new_run_id(recipe)
    started = _now()
    with conn.transaction():
        conn.execute(
            "INSERT INTO sphere.runs (run_id, recipe, recipe_version, pipeline_version, "
            "parameters, sequence_id, inputs_digest, status, host, started_at) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, 'running', %s, %s)",
            (run_id, recipe.name, recipe.version, PIPELINE_VERSION,
             Json(params_dict(recipe.params)), sequence_id, digest, socket.gethostname(),
             started))
    return {"run_id": run_id, "started_at": started, "t0": time.monotonic()}


def finish_run(conn, run, status, *, error=None, quality_flags=None, timings=None):
    """Close a run (call inside the transaction that registers its products).

    Parameters
    ----------
    conn : `psycopg.Connection`
    run : dict
        As returned by `start_run`.
    status : {'done', 'failed', 'refused'}
    error : str, optional
        Why it failed or was refused.
    quality_flags : list of str, optional
    timings : dict of str to float, optional
        Seconds per step.
    """
    import time

    from psycopg.types.json import Json

    conn.execute(
        "UPDATE sphere.runs SET status = %s, error = %s, quality_flags = %s, timings = %s, "
        "finished_at = %s, duration_s = %s WHERE run_id = %s",
        (status, error, list(quality_flags or []), Json(timings or {}), _now(),
         round(time.monotonic() - run["t0"], 3), run["run_id"]))


def fail_run(conn, run, exc, timings=None):
    """Record a run that raised ``exc`` (in its own transaction); return the error line.

    The batch goes on after a failure: the short message goes to the caller, the
    traceback to ``sphere.runs.error``.
    """
    import traceback

    error = f"{type(exc).__name__}: {exc}"
    with conn.transaction():
        finish_run(conn, run, "failed", timings=timings,
                   error=error + "\n" + traceback.format_exc(limit=8))
    return error


def settled_digests(conn, recipe_name):
    """Inputs digests of the recipe's runs that ended ``done`` or ``refused``."""
    rows = conn.execute("SELECT DISTINCT inputs_digest FROM sphere.runs WHERE recipe = %s "
                        "AND status IN ('done', 'refused')", (recipe_name,)).fetchall()
    return {r[0] for r in rows}
