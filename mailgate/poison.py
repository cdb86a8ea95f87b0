"""Telling a mail that kills workers from an innocent one caught by outside kills.

A mail whose worker died while it was processed *alone* is a suspect; after
``max_attempts`` such deaths it used to be marked ``failed`` at once.  Under
repeated outside kills (an OOM killer, a supervisor restarting the service, the
crash test's SIGKILL campaign) an innocent mail can simply be the one in flight
five times.  Counting alone cannot tell the two apart, so the verdict is taken
by experiment: the suspect is processed once more in a process of its own.  If
that process dies or hangs, the mail is poison and is failed; if it finishes,
the mail was innocent and its outcome is recorded as usual.  An outside kill of
the service during the experiment only leads to another experiment later, never
to a verdict.
"""

from __future__ import annotations

import logging
import multiprocessing
import os

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from mailgate.config import WorkerSettings
from mailgate.models import InboundMail, InboundStatus

log = logging.getLogger("mailgate.worker")
# forkserver: the service has threads whose locks a forked child would inherit.
START_METHOD = "forkserver"
CHILD_RAISED = 3  # exit code of an attempt that raised (database trouble): no verdict


def is_suspect(factory: sessionmaker[Session], inbound_id: int, config: WorkerSettings) -> bool:
    """Claimed alone after ``max_attempts`` solo attempts that all ended in a dead worker."""
    with factory() as session:
        solo = session.scalar(select(InboundMail.solo_attempts).where(InboundMail.id == inbound_id))
        session.commit()
    return (solo or 0) > config.max_attempts


def try_in_isolation(
    factory: sessionmaker[Session], inbound_id: int, me: str, config: WorkerSettings
) -> str:
    """Process a suspect in a child process; fail it if that process dies or hangs.

    Returns the mail's status afterwards (``processing`` again if there was no
    verdict: the isolated attempt raised, e.g. the database was locked).
    """
    url = factory.kw["bind"].url.render_as_string(hide_password=False)
    child = multiprocessing.get_context(START_METHOD).Process(
        target=_attempt, args=(url, inbound_id, me), daemon=True
    )
    child.start()
    child.join(config.lease_seconds)
    if child.is_alive():
        child.kill()
        child.join()
        verdict = f"did not finish within {config.lease_seconds} s"
    elif child.exitcode == 0:
        return _status(factory, inbound_id)
    elif child.exitcode == CHILD_RAISED:
        log.warning("inbound %s: isolated attempt raised; retried later", inbound_id)
        return _status(factory, inbound_id)
    else:
        verdict = f"killed its process (exit code {child.exitcode})"
    reason = (
        f"processing was interrupted {config.max_attempts} times (the worker died); "
        f"processed alone in a separate process, it {verdict}; left for inspection"
    )
    with factory() as session:
        session.execute(
            update(InboundMail)
            .where(
                InboundMail.id == inbound_id,
                InboundMail.claimed_by == me,
                InboundMail.status == InboundStatus.PROCESSING,
            )
            .values(
                status=InboundStatus.FAILED, status_reason=reason, claimed_by=None, lease_until=None
            )
        )
        session.commit()
    log.error("inbound %s failed: %s", inbound_id, reason)
    return _status(factory, inbound_id)


def _status(factory: sessionmaker[Session], inbound_id: int) -> str:
    with factory() as session:
        status = session.scalar(select(InboundMail.status).where(InboundMail.id == inbound_id))
        session.commit()
    return str(status)


def _attempt(url: str, inbound_id: int, me: str) -> None:
    """In the child: the whole pipeline for one mail, parsed in this very process."""
    from mailgate import db
    from mailgate.worker import process_ids

    os.environ["MAILGATE_PARSE_PROCESSES"] = "0"
    try:
        engine = db.create_db_engine(url)
        process_ids(db.make_session_factory(engine), [inbound_id], me)
        engine.dispose()
    except Exception:  # noqa: BLE001 - an exception is not a dead process
        log.exception("isolated attempt on inbound %s raised", inbound_id)
        os._exit(CHILD_RAISED)
