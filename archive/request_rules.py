"""Rules of reduction requests, without a database: states, modes, parameters.

`check_transition` says which state changes are allowed; the ``validate_*``
functions turn what a user sends (a web form, JSON, the command line) into
whitelisted, typed values, or raise `RequestError` with a message meant for
that user. `archive.requests` applies them to the database.
"""
import datetime
import math
import re

from .accounts import AccountError, check_prog_id
from .exceptions import IllegalTransition, RequestError, RequestForbidden

__all__ = ['STATES', 'TRANSITIONS', 'NOTIFIED', 'MODES', 'ALGORITHMS', 'PCA_ALGORITHMS',
           'MAX_COMPONENTS', 'MAX_COMPONENT_LIST', 'MAX_NIGHTS', 'PRIORITY_MIN',
           'PRIORITY_MAX', 'MAX_TEXT', 'FRAME_SELECTION', 'PARAMETER_KEYS',
           'check_transition', 'validate_nights', 'validate_modes', 'validate_parameters',
           'validate_submission']

STATES = ('submitted', 'accepted', 'queued', 'running', 'done', 'failed', 'rejected')

#: State -> states it may go to. ``running -> queued`` is the recovery of a request
#: whose worker died; ``failed -> queued`` is staff trying again.
TRANSITIONS = {
    'submitted': ('accepted', 'rejected'),
    'accepted': ('queued',),
    'queued': ('running',),
    'running': ('done', 'failed', 'queued'),
    'failed': ('queued',),
    'done': (),
    'rejected': (),
}

#: States the requester is told about (a message in the outbox).
NOTIFIED = ('accepted', 'rejected', 'done', 'failed')

#: Modes a request may name: arm and ``sphere.sequences.ins_mode``.
MODES = {'IRDIS-DBI': ('IRDIS', 'DBI'), 'IRDIS-CI': ('IRDIS', 'CI'),
         'IFS-YJ': ('IFS', 'OBS_YJ'), 'IFS-YJH': ('IFS', 'OBS_H')}

#: Speckle subtractions a request may ask for (those of
#: ``reduction.level2.params.ALGORITHMS``; archive/ does not import reduction/, a
#: test checks the two agree).
ALGORITHMS = ('pca', 'pca_annular', 'median', 'stack', 'pca_asdi')
#: The algorithms that take a number of principal components.
PCA_ALGORITHMS = ('pca', 'pca_annular', 'pca_asdi')
MAX_COMPONENTS = 50
#: At most this many component counts in one request (one level-2 run each).
MAX_COMPONENT_LIST = 10
MAX_NIGHTS = 366
PRIORITY_MIN, PRIORITY_MAX = -100, 100
MAX_TEXT = 2000

#: Frame selection options (``reduction.level1.params.SelectionParams``) and their
#: allowed ranges.
FRAME_SELECTION = {'z_max': (1.0, 100.0), 'r_in_px': (0.0, 300.0), 'r_out_px': (1.0, 400.0)}
PARAMETER_KEYS = ('algorithm', 'components', 'frame_selection')

_NIGHT_RE = re.compile(r'^\d{4}-\d{2}-\d{2}$')


def check_transition(state, new_state):
    """Raise `IllegalTransition` unless a request in ``state`` may go to ``new_state``."""
    if new_state not in TRANSITIONS.get(state, ()):
        allowed = ', '.join(TRANSITIONS.get(state, ())) or 'nothing (it is final)'
        raise IllegalTransition(f'a request that is {state} cannot become {new_state} '
                                f'(from {state} it can become: {allowed})')


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _short(value, n=40):
    text = str(value)
    return repr(text[:n] + ('...' if len(text) > n else ''))


def validate_nights(nights):
    """Nights as a sorted list of distinct ``YYYY-MM-DD`` strings (empty: all nights).

    Raises
    ------
    RequestError
    """
    if nights is None or nights == '':
        return []
    if isinstance(nights, str):
        nights = [nights]
    if not isinstance(nights, (list, tuple)):
        raise RequestError('nights must be a list of dates such as "2025-04-12"')
    if len(nights) > MAX_NIGHTS:
        raise RequestError(f'at most {MAX_NIGHTS} nights in one request')
    out = set()
    for night in nights:
        if not isinstance(night, str) or not _NIGHT_RE.match(night):
            raise RequestError(f'{_short(night)} is not a night: write YYYY-MM-DD '
                               '(the date of the evening)')
        try:
            datetime.date.fromisoformat(night)
        except ValueError:
            raise RequestError(f'{night!r} is not a date of the calendar') from None
        out.add(night)
    return sorted(out)


def validate_modes(modes):
    """Modes as a sorted list of distinct names of `MODES` (empty: all modes).

    Raises
    ------
    RequestError
    """
    if modes is None or modes == '':
        return []
    if isinstance(modes, str):
        modes = [modes]
    if not isinstance(modes, (list, tuple)) or len(modes) > len(MODES):
        raise RequestError(f'modes must be a list of some of {", ".join(MODES)}')
    for mode in modes:
        if mode not in MODES:
            raise RequestError(f'{_short(mode)} is not a mode: choose among '
                               f'{", ".join(MODES)}')
    return sorted(set(modes))


def _components(value, algorithm):
    if value is None:
        return None
    if algorithm not in PCA_ALGORITHMS:
        raise RequestError(f'components apply to the PCA algorithms only '
                           f'({", ".join(PCA_ALGORITHMS)}), not to {algorithm}')
    values = value if isinstance(value, list) else [value]
    if not values or len(values) > MAX_COMPONENT_LIST:
        raise RequestError(f'components: give 1 to {MAX_COMPONENT_LIST} numbers')
    for n in values:
        if not _is_int(n) or not 1 <= n <= MAX_COMPONENTS:
            raise RequestError(f'components must be whole numbers from 1 to {MAX_COMPONENTS}, '
                               f'not {_short(n)}')
    values = sorted(set(values))
    return values if isinstance(value, list) else values[0]


def _frame_selection(value):
    if value is None:
        return None
    if not isinstance(value, dict):
        raise RequestError('frame_selection must be an object with some of '
                           f'{", ".join(FRAME_SELECTION)}')
    out = {}
    for key, number in value.items():
        if key not in FRAME_SELECTION:
            raise RequestError(f'frame_selection: unknown option {_short(key)} (known: '
                               f'{", ".join(FRAME_SELECTION)})')
        lo, hi = FRAME_SELECTION[key]
        if not _is_number(number) or not lo <= number <= hi:
            raise RequestError(f'frame_selection {key} must be a number from {lo:g} to '
                               f'{hi:g}, not {_short(number)}')
        out[key] = float(number)
    # The annulus comes whole: one radius against the engine's default of the other
    # could make it empty.
    if ('r_in_px' in out) != ('r_out_px' in out):
        raise RequestError('frame_selection: give both r_in_px and r_out_px, or neither')
    if 'r_in_px' in out and out['r_in_px'] >= out['r_out_px']:
        raise RequestError('frame_selection: r_in_px must be smaller than r_out_px')
    return out or None


def validate_parameters(parameters):
    """Whitelisted, typed reduction parameters.

    Parameters
    ----------
    parameters : dict or None
        ``algorithm`` (one of `ALGORITHMS`, default ``pca``), ``components``
        (a whole number 1..50 or a list of them; PCA only; default: the
        engine's choice), ``frame_selection`` (an object with some of
        ``z_max``, ``r_in_px``, ``r_out_px``; default: the archive's).

    Returns
    -------
    dict
        ``algorithm`` always, the other keys when given.

    Raises
    ------
    RequestError
    """
    if parameters is None:
        parameters = {}
    if not isinstance(parameters, dict):
        raise RequestError('parameters must be an object with some of '
                           f'{", ".join(PARAMETER_KEYS)}')
    unknown = [k for k in parameters if k not in PARAMETER_KEYS]
    if unknown:
        raise RequestError(f'unknown parameter {_short(unknown[0])} (known: '
                           f'{", ".join(PARAMETER_KEYS)})')
    algorithm = parameters.get('algorithm', 'pca')
    if algorithm is None:
        algorithm = 'pca'
    if algorithm not in ALGORITHMS:
        raise RequestError(f'algorithm {_short(algorithm)} is not one the engine knows: '
                           f'choose among {", ".join(ALGORITHMS)}')
    out = {'algorithm': algorithm}
    components = _components(parameters.get('components'), algorithm)
    if components is not None:
        out['components'] = components
    selection = _frame_selection(parameters.get('frame_selection'))
    if selection is not None:
        out['frame_selection'] = selection
    return out


def validate_submission(user, prog_id, nights=None, modes=None, parameters=None):
    """Check what ``user`` asks for; return ``(prog_id, nights, modes, parameters)``.

    Raises
    ------
    RequestError
        Bad nights, modes or parameters, or a programme identifier that is not one.
    RequestForbidden
        ``user`` is neither PI nor CoI of ``prog_id``.
    """
    try:
        check_prog_id(prog_id)
    except AccountError as exc:
        raise RequestError(str(exc)) from None
    nights, modes = validate_nights(nights), validate_modes(modes)
    parameters = validate_parameters(parameters)
    if user is None or user.role_in(prog_id) not in ('PI', 'CoI'):
        raise RequestForbidden(f'only the PI or a CoI of programme {prog_id} may ask for the '
                               'reduction of its data')
    return prog_id, nights, modes, parameters

