"""``mailgate users``: create the first admin and set passwords from the shell.

Why a CLI besides the setup page: an admin locked out (forgotten password, no
working relay for the reset mail) must be able to get back in on the server.
The password is read from a prompt, a file (``--password-file``) or
``MAILGATE_ADMIN_PASSWORD`` - never from the command line, where ``ps`` shows it.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from mailgate import db
from mailgate.config import Settings
from mailgate.models import User, UserRole
from mailgate.setup_lock import mark_admin_created


def add_parser(sub: Any, common: argparse.ArgumentParser) -> None:
    cmd = sub.add_parser("users", parents=[common], help="web UI accounts")
    users_sub = cmd.add_subparsers(dest="users_command")
    create = users_sub.add_parser(
        "create-admin", parents=[common], help="create (or promote) an admin with a password"
    )
    create.add_argument("--email", required=True)
    create.add_argument("--name", default="")
    create.add_argument("--password-file", type=Path, help="read the password from FILE")
    create.set_defaults(handler=cmd_create_admin)
    pw = users_sub.add_parser("set-password", parents=[common], help="set a user's password")
    pw.add_argument("--email", required=True)
    pw.add_argument("--password-file", type=Path, help="read the password from FILE")
    pw.set_defaults(handler=cmd_set_password)


def _read_password(args: argparse.Namespace) -> str:
    if args.password_file:
        return args.password_file.read_text(encoding="utf-8").rstrip("\r\n")
    if os.environ.get("MAILGATE_ADMIN_PASSWORD"):
        return os.environ["MAILGATE_ADMIN_PASSWORD"]
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat: ") != first:
        raise ValueError("the passwords differ")
    return first


def _set_password(settings: Settings, args: argparse.Namespace, admin: bool) -> int:
    from mailgate.service import open_database
    from mailgate.webui.passwords import WeakPassword, check_strength, hash_password

    email = args.email.strip().lower()
    try:
        password = _read_password(args)
        check_strength(password, email)
    except (ValueError, OSError) as exc:
        reason = str(exc) if not isinstance(exc, WeakPassword) else f"password too weak: {exc}"
        print(f"error: {reason}", file=sys.stderr)
        return 2
    engine, factory = open_database(settings, migrate=True)
    try:
        with db.session_scope(factory) as session:
            user = session.scalar(select(User).where(func.lower(User.email) == email))
            if user is None:
                if not admin:
                    print(f"error: no user {email}", file=sys.stderr)
                    return 1
                user = User(email=email, name=args.name or email, receives_leads=False)
                session.add(user)
            if admin:
                user.role = UserRole.ADMIN
                user.active = True
                if args.name:
                    user.name = args.name
                mark_admin_created(session)  # the web UI's one-time set-up closes with it
            user.password_hash = hash_password(password)
        what = "admin" if admin else "password of"
        print(f"{what} {email} set", file=sys.stderr)
        return 0
    finally:
        engine.dispose()


def cmd_create_admin(args: argparse.Namespace, settings: Settings) -> int:
    return _set_password(settings, args, admin=True)


def cmd_set_password(args: argparse.Namespace, settings: Settings) -> int:
    return _set_password(settings, args, admin=False)
