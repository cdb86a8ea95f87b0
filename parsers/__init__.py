"""Source parsers: turn one raw inquiry mail into a :class:`ParsedLead`.

``parse_raw`` (bytes in) and ``parse_view`` (an already loaded mail) are the
entry points used by the pipeline and by ``mailgate parse``; neither raises on
bad input: a broken mail still yields an object with warnings.
"""

from __future__ import annotations

from .context import DEFAULT_CONTEXT, ParseContext
from .finish import finalize
from .layers import complete
from .message import MailView, ShapeError, check_shape, load
from .model import CustomerData, ParsedLead, VehicleData
from .nonlead import non_lead_reason
from .registry import PARSERS, pick
from .signals import authentication_failed

__all__ = [
    "DEFAULT_CONTEXT",
    "PARSERS",
    "CustomerData",
    "ParseContext",
    "ParsedLead",
    "ShapeError",
    "VehicleData",
    "extract_lead",
    "parse_raw",
    "parse_view",
]


def parse_raw(
    raw: bytes,
    *,
    envelope_from: str | None = None,
    ctx: ParseContext = DEFAULT_CONTEXT,
) -> ParsedLead:
    """Best-effort lead (or non-lead with a reason) from raw bytes; never raises."""
    try:
        check_shape(raw)
    except ShapeError as exc:
        return ParsedLead(parser="none", warnings=[str(exc)], non_lead_reason=f"shape: {exc}")
    try:
        view = load(raw)
        reason = non_lead_reason(view, envelope_from)
        if reason:
            return finalize(
                ParsedLead(
                    parser="none",
                    subject=view.subject,
                    warnings=view.warnings,
                    non_lead_reason=reason,
                ),
                ctx,
            )
    except Exception as exc:  # noqa: BLE001 - the contract: a broken mail still yields an object
        return _unparseable(exc)
    return parse_view(view, ctx)


def parse_view(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    """Pick the parser, run it, clean its result; never raises (see :func:`extract_lead`)."""
    try:
        return extract_lead(view, ctx)
    except Exception as exc:  # noqa: BLE001 - the contract: a broken mail still yields an object
        return _unparseable(exc)


def extract_lead(view: MailView, ctx: ParseContext = DEFAULT_CONTEXT) -> ParsedLead:
    """Pick the parser, run it, clean its result; raises what a parser raises.

    :func:`parse_view` is this behind its safety net; the fuzz target
    (fuzz/fuzz_extract_lead.py) calls it bare, so a parser bug is a crash there.

    A mail that claims a platform origin but fails the dealer's own DKIM/DMARC
    check is parsed by the generic parser as ``unknown``: look-alike phishing
    must not be filed as a marketplace lead.

    A forwarded lead is first unwrapped (:func:`.forward.unwrap_forward`): the
    parser is chosen for, and runs on, the quoted original.  The authentication
    verdict stays that of the outer mail, the only one the dealer's MX checked;
    and the quoted "From: noreply@mobile.de" of a forward is only believed when
    a dealer address forwarded it — anyone else could have typed it.
    """
    from . import generic
    from .forward import unwrap_forward

    outer = view
    view = unwrap_forward(view, ctx)
    module = pick(view)
    failure = authentication_failed(outer, ctx.trusted_authserv_ids)
    if view is not outer and not failure and not _sent_by_dealer(outer, ctx):
        failure = "a forward from outside the dealership (its quoted sender is unverified)"
    if failure and module is not generic:
        lead = generic.parse(view, ctx)
        lead.warnings.append(
            f"looks like {module.NAME} but {failure}: treated as an unknown source"
        )
    else:
        lead = module.parse(view, ctx)
    return finalize(complete(lead, view, ctx), ctx)


def _sent_by_dealer(view: MailView, ctx: ParseContext) -> bool:
    from .fields import is_dealer_address

    return any(is_dealer_address(a, ctx.dealer_addresses) for _, a in view.from_addresses)


def _unparseable(exc: Exception) -> ParsedLead:
    return ParsedLead(
        parser="none",
        warnings=[f"parser error: {type(exc).__name__}: {exc}"[:500]],
        non_lead_reason="unparseable",
    )
