"""Running level-1 reductions on Dask: a local cluster or an existing scheduler.

One task per sequence (`reduction.level1_run.reduce_sequence`); a task that
raises is turned into a ``failed`` result, so one bad sequence never stops the
others. The cluster is a `distributed.LocalCluster` sized to the machine, or
the scheduler named by ``SPHEREDC_DASK_SCHEDULER`` (``tcp://host:8786``),
whose workers must see the same ``SPHEREDC_HOME`` (or database URL) and files.
Start such workers with
``DASK_DISTRIBUTED__NANNY__PRE_SPAWN_ENVIRON__MALLOC_TRIM_THRESHOLD_=None``
(see `_client` for why).
"""
import os

from .exceptions import EngineError

__all__ = ["select_sequences", "reduce_sequences", "local_cluster_size"]

_TRIM_KEY = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


def local_cluster_size(memory_per_worker_gib=3.0):
    """Local cluster size: one single-threaded worker per core, no more than memory
    allows (a full-size IRDIS sequence peaks at ~1 GiB; 3 GiB leaves a margin).

    Returns
    -------
    n_workers : int
    memory_limit_bytes : int
        Per worker.
    """
    import psutil

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    total = psutil.virtual_memory().total
    by_memory = max(1, int(total / (memory_per_worker_gib * 2 ** 30)))
    n = max(1, min(cores or 1, by_memory))
    return n, int(total / n)


def select_sequences(conn, *, sequence=None, night=None, pending=False, recipe=None):
    """Sequences to reduce.

    Parameters
    ----------
    conn : `psycopg.Connection`
    sequence : str, optional
        Just this one.
    night : str, optional
        All sequences of this night ('YYYY-MM-DD').
    pending : bool, optional
        Only those with no ``done``/``refused`` run for their current inputs digest
        (never reduced, killed, failed, or inputs, parameters or recipe version
        changed since).
    recipe : `~reduction.recipes.Recipe`, optional
        Default `~reduction.recipes.MASTER_CUBE`.

    Returns
    -------
    sequence_ids : list of str
    """
    from .level1_run import sequence_digest
    from .provenance import settled_digests
    from .recipes import MASTER_CUBE
    from .sequence_io import load_sequence

    recipe = recipe or MASTER_CUBE
    where, args = ["arm = 'IRDIS'", "coalesce(level, 'raw') <> 'reduced'"], []
    if sequence:
        where, args = ["sequence_id = %s"], [sequence]
    if night:
        where.append("night = %s")
        args.append(night)
    ids = [r[0] for r in conn.execute(
        f"SELECT sequence_id FROM sphere.sequences WHERE {' AND '.join(where)} "
        "ORDER BY mjd_start", args).fetchall()]
    if not pending:
        return ids
    done = settled_digests(conn, recipe.name)
    return [s for s in ids if sequence_digest(load_sequence(conn, s), recipe) not in done]


def _safe_reduce(sequence_id, settings, recipe):
    """Task body: never raises, so the batch gathers every result."""
    from .level1_run import RunResult, reduce_sequence

    try:
        return reduce_sequence(sequence_id, settings, recipe=recipe).as_dict()
    except Exception as exc:  # e.g. the database vanished: nothing could be recorded
        return RunResult(sequence_id, "failed", error=f"{type(exc).__name__}: {exc}").as_dict()


def _client(settings, n_workers=None):
    """A Dask client on the configured scheduler, or on a new local cluster."""
    from distributed import Client, LocalCluster

    if settings.dask_scheduler:
        try:
            return Client(settings.dask_scheduler, timeout="20s"), None
        except OSError as exc:
            raise EngineError(f"cannot reach the Dask scheduler {settings.dask_scheduler}: "
                              f"{exc}") from exc
    import dask

    n, memory = local_cluster_size()
    # Dask sets MALLOC_TRIM_THRESHOLD_ in its workers, which freezes glibc's mmap
    # threshold: every full-frame temporary becomes a fresh mmap (3.5x the page
    # faults, level 1 1.5-3x slower). Our tasks free their memory on return anyway.
    with dask.config.set({_TRIM_KEY: None}):
        cluster = LocalCluster(n_workers=n_workers or n, threads_per_worker=1, processes=True,
                               memory_limit=memory, dashboard_address=None, host="127.0.0.1")
    return Client(cluster), cluster


def reduce_sequences(sequence_ids, settings=None, *, recipe=None, n_workers=None,
                     use_dask=True):
    """Reduce sequences, one Dask task each.

    Parameters
    ----------
    sequence_ids : list of str
    settings : `archive.config.Settings`, optional
        Default from the environment; its ``dask_scheduler`` selects the cluster.
    recipe : `~reduction.recipes.Recipe`, optional
        Default `~reduction.recipes.MASTER_CUBE`.
    n_workers : int, optional
        Workers of the local cluster (default: `local_cluster_size`).
    use_dask : bool, optional
        False runs the sequences one after the other in this process.

    Returns
    -------
    results : list of dict
        `~reduction.level1_run.RunResult` as dicts, in the order of ``sequence_ids``.

    Raises
    ------
    EngineError
        If the configured scheduler cannot be reached.
    """
    from archive.config import load_settings

    from .recipes import MASTER_CUBE

    settings = settings or load_settings()
    recipe = recipe or MASTER_CUBE
    if not sequence_ids:
        return []
    if not use_dask:
        return [_safe_reduce(s, settings, recipe) for s in sequence_ids]
    import uuid

    client, cluster = _client(settings, n_workers)
    batch = uuid.uuid4().hex[:8]  # keys unique per batch on a shared scheduler
    try:
        futures = client.map(_safe_reduce, sequence_ids, settings=settings, recipe=recipe,
                             pure=False, key=[f"reduce-{s}-{batch}" for s in sequence_ids])
        results = []
        for s, fut in zip(sequence_ids, futures):
            try:
                results.append(fut.result())
            except Exception as exc:  # worker died: the task is lost, say so
                results.append({"sequence_id": s, "status": "failed", "run_id": None,
                                "error": f"{type(exc).__name__}: {exc}", "products": [],
                                "flags": [], "timings": {}})
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
