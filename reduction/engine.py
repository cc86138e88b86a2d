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

`reduce_for_request` is the task of one sequence of a PI's reduction request
(levels 1 and 2 with the request's parameters, products to the request's
`reduction.targets.ProductTarget`); `map_sequences` runs any such task on
the cluster, one per sequence.
"""
import os

from .exceptions import EngineError

__all__ = ["select_sequences", "reduce_sequences", "local_cluster_size", "map_sequences",
           "reduce_for_request"]

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


def map_sequences(fn, sequence_ids, settings, *iterables, n_workers=None, use_dask=True,
                  name="task", lost=None, **kwargs):
    """Run ``fn`` once per sequence on the engine's Dask cluster; gather the results.

    Parameters
    ----------
    fn : callable
        ``fn(sequence_id, *items, settings=settings, **kwargs)``, importable by
        the workers (a module-level function); it should not raise.
    sequence_ids : list of str
    settings : `archive.config.Settings`
        Its ``dask_scheduler`` selects the cluster (default a local one).
    *iterables : iterables
        Further positional arguments of ``fn``, one item per sequence.
    n_workers : int, optional
        Workers of the local cluster (default: `local_cluster_size`).
    use_dask : bool, optional
        False calls ``fn`` in this process, one sequence after the other.
    name : str, optional
        Prefix of the tasks' keys (made unique per call).
    lost : callable, optional
        ``lost(sequence_id, exc)``: the result of a task whose worker died;
        default ``{'sequence_id', 'status': 'failed', 'error'}``.
    **kwargs
        Passed to every call of ``fn``.

    Returns
    -------
    results : list
        ``fn``'s results in the order of ``sequence_ids``.

    Raises
    ------
    EngineError
        If the configured scheduler cannot be reached.
    """
    if not sequence_ids:
        return []
    per_sequence = list(zip(sequence_ids, *iterables))
    if not use_dask:
        return [fn(*args, settings=settings, **kwargs) for args in per_sequence]
    import uuid

    lost = lost or _lost
    client, cluster = _client(settings, n_workers)
    batch = uuid.uuid4().hex[:8]  # keys unique per batch on a shared scheduler
    try:
        futures = client.map(fn, *zip(*per_sequence), settings=settings, pure=False,
                             key=[f"{name}-{s}-{batch}" for s in sequence_ids], **kwargs)
        results = []
        for s, fut in zip(sequence_ids, futures):
            try:
                results.append(fut.result())
            except Exception as exc:  # worker died: the task is lost, say so
                results.append(lost(s, exc))
        return results
    finally:
        client.close()
        if cluster is not None:
            cluster.close()


def _lost(sequence_id, exc):
    return {"sequence_id": sequence_id, "status": "failed",
            "error": f"the Dask worker was lost ({type(exc).__name__}: {exc})"}


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

    def lost(s, exc):
        return {"sequence_id": s, "status": "failed", "run_id": None,
                "error": f"{type(exc).__name__}: {exc}", "products": [], "flags": [],
                "timings": {}}

    return map_sequences(_safe_reduce, sequence_ids, settings or load_settings(),
                         n_workers=n_workers, use_dask=use_dask, name="reduce", lost=lost,
                         recipe=recipe or MASTER_CUBE, level2_recipe=level2_recipe,
                         skip_current=skip_current)


# --- reductions on request -----------------------------------------------------------------

def _reusable_level1(conn, sequence_id, recipe, params):
    """The archive's current master-cube and PSF rows when made from the sequence's
    current inputs by ``recipe`` with ``params``; else None."""
    from .level1_run import sequence_digest
    from .level2_run import current_level1
    from .sequence_io import load_sequence

    if params != recipe.params:
        return None
    level1 = current_level1(conn, sequence_id)
    if set(level1) != {"master_cube", "psf_cube"}:
        return None
    row = conn.execute("SELECT inputs_digest FROM sphere.runs WHERE run_id = %s",
                       (level1["master_cube"]["run_id"],)).fetchone()
    digest = sequence_digest(load_sequence(conn, sequence_id), recipe)
    return level1 if row and row[0] == digest else None


def _request_problem(arm, level1_recipe, level1_params, level2_params):
    """Why the parameters do not apply to a sequence of ``arm`` (None: they do)."""
    if arm not in ("IRDIS", "IFS"):
        return f"the engine reduces IRDIS and IFS sequences, not {arm}"
    if type(level1_params) is not type(level1_recipe.params):
        return (f"level-1 parameters {type(level1_params).__name__} do not apply to {arm} "
                f"(its recipe {level1_recipe.name} takes "
                f"{type(level1_recipe.params).__name__})")
    if arm == "IFS":
        from .recipes import IFS_LEVEL2

        wrong = sorted({p.algorithm for p in level2_params} - {IFS_LEVEL2.params.algorithm})
        if wrong:
            return (f"IFS sequences are post-processed by PCA-ASDI only (the request asks "
                    f"for {', '.join(wrong)}): ask for 'pca' or 'pca_asdi'")
    return None


def reduce_for_request(sequence_id, level1_params=None, level2_params=(), *, settings, target):
    """Dask task: reduce one sequence for a reduction request; never raises.

    Level 1 runs through the arm's master-cube recipe (IRDIS:
    `~reduction.level1_run.reduce_sequence`; IFS cubes of ``sph_ifs_science_dr``:
    `~reduction.level1_ifs_run.reduce_ifs_sequence`) unless ``level1_params``
    are the recipe's own and the sequence's current master cube was made from
    its current inputs with them: that master cube and PSF are then reused.
    Each level-2 run (`~reduction.level2_run.reduce_level2`; IFS: PCA-ASDI and
    candidate spectra) post-processes that master cube.

    The per-sequence arguments come first and the shared ones are keywords, as
    `map_sequences` calls it: ``map_sequences(reduce_for_request, ids, settings,
    level1_list, level2_lists, target=target)``.

    Parameters
    ----------
    sequence_id : str
    level1_params : dataclass, optional
        `~reduction.level1.MasterCubeParams` (IRDIS) or
        `~reduction.level1.ifs.IfsCubeParams` (IFS); default the arm's recipe's
        (`~reduction.targets.request_params` makes both from a request).
    level2_params : list of `~reduction.level2.Level2Params`
        One level-2 run each; IFS takes PCA-ASDI only.
    settings : `archive.config.Settings`
    target : `~reduction.targets.ProductTarget`
        The request's (`~reduction.targets.ProductTarget.for_request`).

    Returns
    -------
    result : dict
        ``sequence_id``, ``status`` ('done' when every level-2 run wrote its
        products, 'partial', 'failed'), ``run_ids``, ``product_ids``,
        ``reused_level1`` (product id of the archive's master cube, or None)
        and ``error`` (plain words, or None; parameters that do not apply to
        the sequence's arm are said here, and nothing runs).
    """
    from archive.db import Database

    from .level1_ifs_run import reduce_ifs_sequence
    from .level1_run import reduce_sequence
    from .level2_run import reduce_level2
    from .recipes import LEVEL2, MASTER_CUBE, recipes_for_arm

    out = {"sequence_id": sequence_id, "status": "failed", "run_ids": [], "product_ids": [],
           "reused_level1": None, "error": None}
    try:
        arm = _arm(settings, sequence_id)
        if arm is None:
            out["error"] = "no longer in the archive"
            return out
        recipe1, recipe2 = recipes_for_arm(arm, MASTER_CUBE, LEVEL2)
        level1_params = recipe1.params if level1_params is None else level1_params
        out["error"] = _request_problem(arm, recipe1, level1_params, level2_params)
        if out["error"]:
            return out
        with Database(settings).connect(autocommit=True) as conn:
            rows = _reusable_level1(conn, sequence_id, recipe1, level1_params)
        if rows is not None:
            out["reused_level1"] = rows["master_cube"]["product_id"]
            level1_ids = [r["product_id"] for r in rows.values()]
        else:
            reduce1 = reduce_ifs_sequence if arm == "IFS" else reduce_sequence
            r1 = reduce1(sequence_id, settings, recipe=recipe1, params=level1_params,
                         target=target)
            out["run_ids"] += [r1.run_id] if r1.run_id else []
            out["product_ids"] += r1.products
            if r1.status != "done":
                out["error"] = f"level 1 {r1.status}: {r1.error}"
                return out
            level1_ids = r1.products
        ok = []
        for p in level2_params:
            r2 = reduce_level2(sequence_id, settings, recipe=recipe2, params=p, target=target,
                               level1_products=level1_ids)
            out["run_ids"] += [r2.run_id] if r2.run_id else []
            out["product_ids"] += r2.products
            ok.append(r2.status == "done")
            if r2.status != "done":
                out["error"] = f"level 2 ({p.algorithm}, ncomp {p.ncomp}) {r2.status}: {r2.error}"
        out["status"] = "done" if all(ok) else "partial" if any(ok) else "failed"
    except Exception as exc:  # the database vanished: nothing more can be recorded
        out["error"] = f"{type(exc).__name__}: {exc}"
    return out
