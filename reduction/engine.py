"""Running reductions on Dask: a local cluster or an existing scheduler.

One task per sequence: level 1, then level 2 on its master cube
(`reduction.level2_run.reduce_level2`) unless only level 1 is asked for; a
task that raises is turned into a ``failed`` result, so one bad sequence never
stops the others. Each arm has its recipes (`reduction.recipes.recipes_for_arm`):
raw IRDIS sequences go through `reduction.level1_run.reduce_sequence` and
the IRDIS level 2 (PCA-ADI), IFS sequences made of ``sph_ifs_science_dr``
cubes through `reduction.level1_ifs_run.reduce_ifs_sequence` and the IFS
level 2 (PCA-ASDI and candidate spectra). The cluster is a
`distributed.LocalCluster` sized to the machine, or the scheduler named by
``SPHEREDC_DASK_SCHEDULER`` (``tcp://host:8786``), whose workers must see
the same ``SPHEREDC_HOME`` (or database URL) and files. Start such workers with
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


#: Which sequences the engine reduces, per arm (SQL on sphere.sequences): raw IRDIS
#: frames, and IFS cubes already made by ESO's sph_ifs_science_dr.
_REDUCIBLE = {"IRDIS": "(arm = 'IRDIS' AND coalesce(level, 'raw') <> 'reduced')",
              "IFS": "(arm = 'IFS' AND level = 'reduced')"}


def select_sequences(conn, *, sequence=None, night=None, pending=False, recipe=None,
                     level2_recipe=None, arms=("IRDIS", "IFS")):
    """Sequences to reduce.

    Parameters
    ----------
    conn : `psycopg.Connection`
    sequence : str, optional
        Just this one (whatever its arm).
    night : str, optional
        All sequences of this night ('YYYY-MM-DD').
    pending : bool, optional
        Only those with no ``done``/``refused`` run for their current inputs digest
        (never reduced, killed, failed, or inputs, parameters or recipe version
        changed since).
    recipe : `~reduction.recipes.Recipe`, optional
        IRDIS level-1 recipe, default `~reduction.recipes.MASTER_CUBE`; IFS
        sequences are checked against `~reduction.recipes.IFS_MASTER_CUBE`.
    level2_recipe : `~reduction.recipes.Recipe`, optional
        With ``pending``, also the sequences whose current master cube has no
        ``done`` run of the level-2 recipe for its digest (master-cube and PSF
        checksums, recipe version, parameters): this recipe for IRDIS,
        `~reduction.recipes.IFS_LEVEL2` for IFS.
    arms : sequence of str, optional
        Arms selected (without ``sequence``): raw IRDIS sequences, and IFS
        sequences of ``sph_ifs_science_dr`` cubes.

    Returns
    -------
    sequence_ids : list of str
        By start time.
    """
    from .level1_run import sequence_digest
    from .provenance import settled_digests
    from .recipes import recipes_for_arm
    from .sequence_io import load_sequence

    chosen = [_REDUCIBLE[a] for a in arms if a in _REDUCIBLE]
    where, args = ["(" + (" OR ".join(chosen) or "false") + ")"], []
    if sequence:
        where, args = ["sequence_id = %s"], [sequence]
    if night:
        where.append("night = %s")
        args.append(night)
    rows = conn.execute(
        f"SELECT sequence_id, arm FROM sphere.sequences WHERE {' AND '.join(where)} "
        "ORDER BY mjd_start", args).fetchall()
    ids = [r[0] for r in rows]
    if not pending:
        return ids
    from .level2_run import current_level1, level2_digest

    settled = {}  # recipe name -> digests of its done/refused runs

    def is_settled(r, digest):
        if r.name not in settled:
            settled[r.name] = settled_digests(conn, r.name)
        return digest in settled[r.name]

    todo = []
    for s, arm in rows:
        r1, r2 = recipes_for_arm(arm, recipe, level2_recipe)
        if not is_settled(r1, sequence_digest(load_sequence(conn, s), r1)):
            todo.append(s)
        elif r2 is not None:
            level1 = current_level1(conn, s)
            if (set(level1) == {"master_cube", "psf_cube"}
                    and not is_settled(r2, level2_digest(level1, r2))):
                todo.append(s)
    return todo


def _settled(settings, sequence_id, recipe, level):
    """Whether the sequence's current inputs already have a done/refused run of the recipe."""
    from archive.db import Database

    from .provenance import settled_digests

    with Database(settings).connect(autocommit=True) as conn:
        if level == 1:
            from .level1_run import sequence_digest
            from .sequence_io import load_sequence

            digest = sequence_digest(load_sequence(conn, sequence_id), recipe)
        else:
            from .level2_run import current_level1, level2_digest

            digest = level2_digest(current_level1(conn, sequence_id), recipe)
        return digest in settled_digests(conn, recipe.name)


def _arm(settings, sequence_id):
    """``sphere.sequences.arm`` of a sequence (None when it is not in the archive)."""
    from archive.db import Database

    with Database(settings).connect(autocommit=True) as conn:
        row = conn.execute("SELECT arm FROM sphere.sequences WHERE sequence_id = %s",
                           (sequence_id,)).fetchone()
    return row[0] if row else None


def _safe_reduce(sequence_id, settings, recipe, level2_recipe=None, skip_current=False):
    """Task body: level 1, then level 2; never raises, so the batch gathers every result.

    The recipes are the arm's (`~reduction.recipes.recipes_for_arm`). With
    ``skip_current`` a level whose inputs digest is already settled is not
    redone (status ``current``).
    """
    from .level1_ifs_run import reduce_ifs_sequence
    from .level1_run import RunResult, reduce_sequence
    from .level2_run import reduce_level2
    from .recipes import recipes_for_arm

    try:
        arm = _arm(settings, sequence_id)
        recipe, level2_recipe = recipes_for_arm(arm, recipe, level2_recipe)
        level1 = reduce_ifs_sequence if arm == "IFS" else reduce_sequence
        if skip_current and _settled(settings, sequence_id, recipe, 1):
            out = RunResult(sequence_id, "current").as_dict()
        else:
            out = level1(sequence_id, settings, recipe=recipe).as_dict()
    except Exception as exc:  # e.g. the database vanished: nothing could be recorded
        out = RunResult(sequence_id, "failed", error=f"{type(exc).__name__}: {exc}").as_dict()
    if level2_recipe is None:
        return out
    if out["status"] not in ("done", "current"):
        out["level2"] = RunResult(sequence_id, "skipped",
                                  error=f"level 1 {out['status']}").as_dict()
        return out
    try:
        if skip_current and _settled(settings, sequence_id, level2_recipe, 2):
            out["level2"] = RunResult(sequence_id, "current").as_dict()
        else:
            out["level2"] = reduce_level2(sequence_id, settings,
                                          recipe=level2_recipe).as_dict()
    except Exception as exc:
        out["level2"] = RunResult(sequence_id, "failed",
                                  error=f"{type(exc).__name__}: {exc}").as_dict()
    return out


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


def reduce_sequences(sequence_ids, settings=None, *, recipe=None, level2_recipe=None,
                     n_workers=None, use_dask=True, skip_current=False):
    """Reduce sequences, one Dask task each (level 1, then level 2 if asked).

    Parameters
    ----------
    sequence_ids : list of str
    settings : `archive.config.Settings`, optional
        Default from the environment; its ``dask_scheduler`` selects the cluster.
    recipe : `~reduction.recipes.Recipe`, optional
        IRDIS level-1 recipe, default `~reduction.recipes.MASTER_CUBE`; IFS
        sequences get `~reduction.recipes.IFS_MASTER_CUBE`.
    level2_recipe : `~reduction.recipes.Recipe`, optional
        Level-2 recipe run after level 1 (e.g. `~reduction.recipes.LEVEL2`);
        None stops after level 1. IFS sequences get
        `~reduction.recipes.IFS_LEVEL2` instead when it is given.
    n_workers : int, optional
        Workers of the local cluster (default: `local_cluster_size`).
    use_dask : bool, optional
        False runs the sequences one after the other in this process.
    skip_current : bool, optional
        Do not redo a level whose inputs digest already has a ``done`` or
        ``refused`` run (``--pending``); its status is then ``current``.

    Returns
    -------
    results : list of dict
        `~reduction.level1_run.RunResult` of level 1 as dicts, in the order of
        ``sequence_ids``; with ``level2_recipe`` each has a ``level2`` entry,
        the level-2 `RunResult` (``skipped`` when level 1 was not done).

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
        return [_safe_reduce(s, settings, recipe, level2_recipe, skip_current)
                for s in sequence_ids]
    import uuid

    client, cluster = _client(settings, n_workers)
    batch = uuid.uuid4().hex[:8]  # keys unique per batch on a shared scheduler
    try:
        futures = client.map(_safe_reduce, sequence_ids, settings=settings, recipe=recipe,
                             level2_recipe=level2_recipe, skip_current=skip_current,
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
