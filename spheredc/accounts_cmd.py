"""``spheredc user`` and ``spheredc programme``: accounts, memberships, tokens, periods.

Register with ``accounts_cmd.register(subparsers)``.
"""
import getpass
import secrets
import sys


def register(subparsers):
    """Add the ``user`` and ``programme`` subcommands."""
    u = subparsers.add_parser('user', help='portal accounts: add users, programmes, API tokens')
    usub = u.add_subparsers(dest='user_action', required=True, metavar='ACTION')
    s = usub.add_parser('add', help='create an account')
    s.add_argument('username')
    s.add_argument('--full-name')
    s.add_argument('--email')
    s.add_argument('--staff', action='store_true', help='staff: sees everything, runs the queue')
    s.add_argument('--password-stdin', action='store_true',
                   help='read the password from standard input (default: a random one, printed)')
    s.add_argument('--pi', metavar='PROG_ID', action='append', default=[],
                   help='PI of this programme (repeatable)')
    s.add_argument('--coi', metavar='PROG_ID', action='append', default=[],
                   help='CoI of this programme (repeatable)')
    s.set_defaults(func=cmd_user_add)
    s = usub.add_parser('member', help='add a user to a programme')
    s.add_argument('username')
    s.add_argument('prog_id')
    s.add_argument('--role', choices=('PI', 'CoI'), default='CoI')
    s.set_defaults(func=cmd_user_member)
    s = usub.add_parser('password', help='set a password (read from standard input)')
    s.add_argument('username')
    s.set_defaults(func=cmd_user_password)
    s = usub.add_parser('token', help='create an API token (printed once)')
    s.add_argument('username')
    s.add_argument('--label')
    s.add_argument('--days', type=int, help='lifetime in days (default: until revoked)')
    s.set_defaults(func=cmd_user_token)

    p = subparsers.add_parser('programme',
                              help="a programme's proprietary period, title and survey")
    p.add_argument('prog_id', help='programme (0104.C-0123) or run (0104.C-0123(A))')
    p.add_argument('--proprietary-days', type=int,
                   help='days after the observation before the data are public (ESO: 365)')
    p.add_argument('--title')
    p.add_argument('--survey', help='survey the programme belongs to (SHINE, ...)')
    p.set_defaults(func=cmd_programme)


def _read_password(args_stdin):
    if args_stdin:
        return sys.stdin.readline().rstrip('\n')
    if sys.stdin.isatty():
        return getpass.getpass('password: ')
    return sys.stdin.readline().rstrip('\n')


def cmd_user_add(args):
    from archive import accounts
    from archive.db import Database

    password = _read_password(True) if args.password_stdin else secrets.token_urlsafe(12)
    with Database().connect() as conn:
        accounts.create_user(conn, args.username, password, full_name=args.full_name,
                             email=args.email, is_staff=args.staff)
        for prog in args.pi:
            accounts.add_membership(conn, args.username, prog, 'PI')
        for prog in args.coi:
            accounts.add_membership(conn, args.username, prog, 'CoI')
    print(f'user {args.username} created' + ('' if args.password_stdin
                                               else f'; password: {password}'))
    return 0


def cmd_user_member(args):
    from archive import accounts
    from archive.db import Database

    with Database().connect() as conn:
        accounts.add_membership(conn, args.username, args.prog_id, args.role)
    print(f'{args.username} is {args.role} of {args.prog_id}')
    return 0


def cmd_user_password(args):
    from archive import accounts
    from archive.db import Database

    with Database().connect() as conn:
        accounts.set_password(conn, args.username, _read_password(True))
    print(f'password of {args.username} changed')
    return 0


def cmd_user_token(args):
    from archive import accounts
    from archive.db import Database

    with Database().connect() as conn:
        token = accounts.create_token(conn, args.username, args.label, args.days)
    print(token)
    return 0


def cmd_programme(args):
    from archive.access import set_programme
    from archive.db import Database

    with Database().connect() as conn:
        n = set_programme(conn, args.prog_id, proprietary_days=args.proprietary_days,
                          title=args.title, survey=args.survey)
    said = [f'proprietary for {args.proprietary_days} days ({n} release dates changed)'
            if args.proprietary_days is not None else None,
            f'survey {args.survey}' if args.survey else None,
            f'title "{args.title}"' if args.title else None]
    print(f'{args.prog_id}: ' + ('; '.join(x for x in said if x) or 'unchanged'))
    return 0
