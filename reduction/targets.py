"""Where a reduction's products go: the archive's own reduction, or a PI's request.

The engine's drivers (`reduction.level1_run.reduce_sequence`,
`reduction.level1_ifs_run.reduce_ifs_sequence`, `reduction.level2_run.reduce_level2`)
take a `ProductTarget`. The archive's (`ARCHIVE`, the default) registers
current products that supersede the older versions and writes the
``sphere.candidates`` and ``sphere.detection_limits`` rows. A request's
(`ProductTarget.for_request`) never replaces the archive's homogeneous
reduction:

- identifiers prefixed ``req<N>.`` and files under ``requests/<N>/`` of the
  products folder (the archive's layout below it);
- ``is_current = false``, nothing superseded, so the archive's current version of
  every product stays current (and the archive's level 2 never reads a request's
  master cube); version numbers come from the same per-sequence count;
- ``request:<N>`` among the inputs of the runs' digests, so a request's run
  never settles the archive's pending work (``spheredc reduce --pending``);
- a release date no earlier than the request's proprietary period
  (`archive.access.PROPRIETARY_DAYS` from the request's start), the data's own
  when later; ``prog_id`` stays the sequence's;
- no candidate or detection-limit rows: the request's files carry them.

`request_params` turns a request's parameters into the recipes' parameters
of one arm.
"""
import dataclasses
import datetime
from pathlib import Path

__all__ = ["ProductTarget", "ARCHIVE", "REQUESTS_DIR", "IFS_REQUEST_ALGORITHMS",
           "request_params"]

#: Folder of the requests' products under the products folder.
REQUESTS_DIR = "requests"
#: Algorithms a request may ask of the IFS level 2 ('pca', the requests'
#: default, means the IFS recipe's PCA-ASDI too).
IFS_REQUEST_ALGORITHMS = ("pca_asdi", "pca")


@dataclasses.dataclass(frozen=True)
class ProductTarget:
    """How a reduction's products are named, stored and registered.

    Attributes
    ----------
    id_prefix : str
        Prepended to every ``product_id`` (``''`` for the archive).
    subdir : str
        Folder of the products relative to the products folder (``''``: the
        products folder itself); their ``path`` starts with it.
    is_current : bool
        ``sphere.products.is_current`` of the products.
    supersede : bool
        Whether older versions of the sequence's products stop being current.
    release_date_min : datetime.datetime or None
        Products are not released before this (naive UTC); the data's own
        release date when later. None keeps the data's.
    digest_tag : str or None
        Added to the inputs of the runs' digests (``request:<N>``).
    write_tables : bool
        Whether level 2 replaces the sequence's ``sphere.candidates`` and
        ``sphere.detection_limits`` rows.
    """
    id_prefix: str = ""
    subdir: str = ""
    is_current: bool = True
    supersede: bool = True
    release_date_min: datetime.datetime | None = None
    digest_tag: str | None = None
    write_tables: bool = True

    @classmethod
    def for_request(cls, request_id, release_date=None):
        """The target of a reduction request's products.

        Parameters
        ----------
        request_id : int
            ``requests.reductions.request_id``.
        release_date : datetime.datetime, optional
            Earliest release (naive UTC); default now plus
            `archive.access.PROPRIETARY_DAYS`.

        Returns
        -------
        target : `ProductTarget`
        """
        if release_date is None:
            from archive.access import PROPRIETARY_DAYS

            now = datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)
            release_date = now + datetime.timedelta(days=PROPRIETARY_DAYS)
        return cls(id_prefix=f"req{request_id}.", subdir=f"{REQUESTS_DIR}/{request_id}",
                   is_current=False, supersede=False, release_date_min=release_date,
                   digest_tag=f"request:{request_id}", write_tables=False)

    def folder(self, products_dir):
        """The folder the products are written under (`pathlib.Path`)."""
        return Path(products_dir) / self.subdir if self.subdir else Path(products_dir)

    def inputs_digest(self, recipe, input_checksums):
        """`reduction.recipes.inputs_digest` of a run, with `digest_tag` among its inputs."""
        from .recipes import inputs_digest

        tag = [self.digest_tag] if self.digest_tag else []
        return inputs_digest(recipe, [*input_checksums, *tag])

    def apply(self, products):
        """Give written products this target's ids, paths, currency and release date.

        Parameters
        ----------
        products : list of `reduction.products.ProductFile`
            As the writers made them, paths relative to `folder`; changed in place.

        Returns
        -------
        products : list of `reduction.products.ProductFile`
        """
        for p in products:
            row = p.row
            row["product_id"] = self.id_prefix + row["product_id"]
            if self.subdir:
                row["path"] = str(Path(self.subdir) / row["path"])
            row["is_current"] = self.is_current
            if self.release_date_min is not None:
                data = row.get("release_date")
                row["release_date"] = (self.release_date_min if data is None
                                       else max(data, self.release_date_min))
        return products


#: The archive's own reduction.
ARCHIVE = ProductTarget()


def request_params(arm, parameters):
    """The level-1 and level-2 parameters a request asks for a sequence of ``arm``.

    Parameters
    ----------
    arm : {'IRDIS', 'IFS'}
        ``sphere.sequences.arm``.
    parameters : dict
        A request's parameters, as `archive.requests` validated them:
        ``algorithm`` (default 'pca'), ``components`` (an int, a list of ints
        or absent) and ``frame_selection`` (`~reduction.level1.params.SelectionParams`
        fields).

    Returns
    -------
    level1 : `~reduction.level1.params.MasterCubeParams` or `~reduction.level1.ifs.IfsCubeParams`
        The arm's master-cube recipe's parameters with the frame selection asked.
    level2 : list of `~reduction.level2.params.Level2Params`
        One level-2 run per component count, on the arm's level-2 recipe. For
        IFS the algorithms of `IFS_REQUEST_ALGORITHMS` become PCA-ASDI; any
        other is kept, and `reduction.engine.reduce_for_request` refuses it
        with a note.
    """
    from .recipes import LEVEL2, MASTER_CUBE, recipes_for_arm

    master, level2 = recipes_for_arm(arm, MASTER_CUBE, LEVEL2)
    base = master.params
    selection = parameters.get("frame_selection")
    level1 = (dataclasses.replace(base, selection=dataclasses.replace(base.selection,
                                                                      **selection))
              if selection else base)
    algorithm = parameters.get("algorithm") or "pca"
    if arm == "IFS" and algorithm in IFS_REQUEST_ALGORITHMS:
        algorithm = level2.params.algorithm
    components = parameters.get("components")
    counts = components if isinstance(components, list) else [components]
    return level1, [dataclasses.replace(level2.params, algorithm=algorithm, ncomp=n)
                    for n in counts]
