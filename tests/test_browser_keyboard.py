"""Keyboard-only use of the web UI in a real browser (Chromium via Playwright).

Issue 7 asks for a UI that is "keyboard navigable".  Two kinds of proof:

* a working day with only Tab, Enter, Space and arrow keys: the skip link, logging in,
  opening a lead from the list, opening and closing a disclosure, logging a contact, and
  switching the login page to English (where the skip link speaks English too);
* the tour's every page (tests/test_browser_tour.py): the skip link is the first Tab stop,
  Tab walks through every interactive element and then leaves the page (no trap), each
  focused element is on screen with a focus indicator its unfocused self lacks (an outline
  of 3:1 contrast at least), no positive tabindex, Tab follows the visual order inside every
  form, and nothing but real links and controls looks clickable.

Keys go through Playwright's keyboard, i.e. trusted key events, so ``:focus-visible`` and the
browser's own Tab order are the real ones a keyboard user gets.
"""

from __future__ import annotations

import re
from typing import Any

from playwright.sync_api import expect

from .browser import LiveWeb, browser, live_web, log_in, page  # noqa: F401 (fixtures)
from .test_browser_tour import ADMIN, PUBLIC_PAGES, reset_page, seed_tour, tour_pages
from .webui_helpers import PASSWORD

# Tab presses allowed per page before the walk counts as stuck (the busiest pages have
# about 50 stops; a date-time input takes one press per segment).
MAX_TABS = 400

# One Tab stop: remembers the element (window.__stops) with its style while focused, and the
# contrast of its outline against what surrounds it (WCAG 1.4.11 asks 3:1 of an indicator).
RECORD_STOP = """() => {
  const rgb = c => (c.match(/[\\d.]+/g) || []).map(Number);
  const luminance = ([r, g, b]) => [r, g, b].map(v => v / 255)
    .map(v => v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4))
    .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
  const around = el => {
    for (let e = el.parentElement; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || c[3] > 0) return c;
    }
    return [255, 255, 255];
  };
  const contrast = (a, b) => {
    const [hi, lo] = [luminance(a), luminance(b)].sort((x, y) => y - x);
    return (hi + 0.05) / (lo + 0.05);
  };
  const el = document.activeElement;
  if (!el || el === document.body || el === document.documentElement) return null;
  const stops = (window.__stops = window.__stops || []);
  let index = stops.findIndex(s => s.el === el);
  if (index < 0) {
    const s = getComputedStyle(el);
    const r = el.getBoundingClientRect();
    stops.push({el, focused: {
      outline: [s.outlineStyle, s.outlineWidth, s.outlineColor].join(' '),
      outlineStyle: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth) || 0,
      outlineColor: s.outlineColor, boxShadow: s.boxShadow,
      contrast: contrast(rgb(s.outlineColor), around(el)),
      onScreen: r.width > 0 && r.height > 0 && r.right > 0 && r.left < innerWidth
                && r.bottom > 0 && r.top < innerHeight,
    }});
    index = stops.length - 1;
  }
  return {index, frame: el.tagName === 'IFRAME'};
}"""

# Inside a frame (the mail previews): the frame's own focused element, shown by its own style.
FRAME_FOCUS = """() => {
  const el = document.activeElement;
  if (!el || el === document.body) return false;
  const s = getComputedStyle(el);
  return s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0 || s.boxShadow !== 'none';
}"""

# Describe an element for failure messages.
DESCRIBE = """el => {
  const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim();
  return el.tagName.toLowerCase() + (el.id ? '#' + el.id : '')
    + (el.name ? '[name=' + el.name + ']' : '') + (text ? ' "' + text.slice(0, 40) + '"' : '');
}"""

# Every element a keyboard user must be able to reach with Tab (one per radio group).
TABBABLE = f"""() => {{
  const describe = {DESCRIBE};
  const radios = new Set();
  const all = document.querySelectorAll(
    'a[href], button, input:not([type=hidden]), select, textarea, iframe, [tabindex],'
    + ' details > summary:first-of-type, [contenteditable=""], [contenteditable=true]');
  window.__expected = Array.from(all).filter(el => {{
    if (el.disabled || el.tabIndex < 0) return false;
    if (!el.checkVisibility({{visibilityProperty: true}})) return false;
    if (el.type === 'radio') {{
      const group = (el.form ? el.form.id : '') + '/' + el.name;
      if (radios.has(group)) return false;
      radios.add(group);
    }}
    return true;
  }});
  return window.__expected.map(describe);
}}"""

# After the walk (focus has left the page): what a keyboard user could not reach or see.
AUDIT = f"""() => {{
  const describe = {DESCRIBE};
  const stops = window.__stops || [];
  const reached = new Set(stops.map(s => s.el));
  const unreached = (window.__expected || []).filter(el => !reached.has(el)).map(describe);
  const visible = (s, plain) => (
    (s.outlineStyle !== 'none' && s.outlineWidth > 0 && !/rgba\\(.*, 0\\)$/.test(s.outlineColor))
    || s.boxShadow !== 'none') && (s.outline !== plain.outline || s.boxShadow !== plain.boxShadow);
  const noIndicator = [], offScreen = [], faint = [];
  for (const stop of stops) {{
    if (document.activeElement === stop.el || stop.shownInFrame) continue;
    const s = getComputedStyle(stop.el);
    const plain = {{outline: [s.outlineStyle, s.outlineWidth, s.outlineColor].join(' '),
                    boxShadow: s.boxShadow}};
    if (!visible(stop.focused, plain)) {{
      noIndicator.push(describe(stop.el) + ' (' + stop.focused.outline + ' / '
                       + stop.focused.boxShadow + ')');
    }}
    if (!stop.focused.onScreen) offScreen.push(describe(stop.el));
    const f = stop.focused;  // 'auto' is the browser's own two-tone ring
    if (f.outlineStyle !== 'none' && f.outlineStyle !== 'auto' && f.boxShadow === 'none'
        && f.contrast < 3) faint.push(describe(stop.el) + ' ' + f.contrast.toFixed(2) + ':1');
  }}
  const positive = Array.from(document.querySelectorAll('[tabindex]'))
    .filter(el => el.tabIndex > 0).map(describe);
  // Tab order inside each form follows reading order, roughly: the next stop never lies
  // to the left of the previous one on the same line or above it (up and to the right is
  // the next column of a grid, down is the next line).
  const disorder = [];
  for (const form of document.querySelectorAll('main form')) {{
    const inForm = stops.map(s => s.el).filter(el => form.contains(el) || el.form === form);
    for (let i = 1; i < inForm.length; i++) {{
      const a = inForm[i - 1].getBoundingClientRect(), b = inForm[i].getBoundingClientRect();
      const above = b.bottom <= a.top + 2, sameLine = b.top < a.bottom && b.bottom > a.top;
      if ((above || sameLine) && b.left < a.left - 2) {{
        const at = r => '@' + [r.left, r.top, r.bottom].map(Math.round).join(',');
        disorder.push(describe(inForm[i - 1]) + at(a) + ' -> ' + describe(inForm[i]) + at(b));
      }}
    }}
  }}
  // Only real links and controls may look clickable (no onclick on divs or table rows).
  const REAL = 'a[href], button, input, select, textarea, summary, label';
  const fakes = Array.from(document.querySelectorAll('body *')).filter(el =>
      ['onclick', 'onmousedown', 'onmouseup', 'onkeydown'].some(a => el.hasAttribute(a))
      || (getComputedStyle(el).cursor === 'pointer' && !el.closest(REAL))).map(describe);
  const first = stops.length && !stops[0].el.matches('a.skip') ? describe(stops[0].el) : '';
  return {{unreached, noIndicator, faint, offScreen, positive, disorder, fakes, first}};
}}"""


# A throw-away, non-tabbable anchor at the very start of <body>, focused: the next Tab goes
# to the page's first stop, whatever had focus or was clicked before.
START_AT_TOP = """() => {
  window.__stops = [];
  const anchor = document.createElement('span');
  anchor.id = 'walk-start';
  anchor.tabIndex = -1;
  document.body.prepend(anchor);
  anchor.focus();
}"""


def _active(tab: Any, script: str = DESCRIBE) -> Any:
    return tab.evaluate(f"() => ({script})(document.activeElement)")


def walk(tab: Any) -> dict[str, Any]:
    """Tab from the top of the page until focus leaves it; returns what went wrong."""
    expected = tab.evaluate(TABBABLE)
    # Start at the top of the document: focus a throw-away anchor before the first element.
    # (A bare blur() leaves Chromium's sequential-focus starting point wherever it was, e.g.
    # on a preview frame that finished loading late, and the walk would begin there.)
    tab.evaluate(START_AT_TOP)
    order: list[int] = []
    left = False
    trapped = ""  # the element Tab came back to before the walk was through
    for _press in range(MAX_TABS):
        tab.keyboard.press("Tab")
        stop = tab.evaluate(RECORD_STOP)
        if stop is None:  # focus went back to the document: it left the page content
            left = bool(order)
            if left:
                break
            continue
        index = stop["index"]
        if stop["frame"] and any(frame.evaluate(FRAME_FOCUS) for frame in tab.frames[1:]):
            tab.evaluate("i => { window.__stops[i].shownInFrame = true; }", index)
        if order and index == order[-1]:
            continue  # the segments of a date input: one element, several stops
        if index in order:
            if index == 0 and len(set(order)) >= len(expected):
                left = True  # wrapped around to the first stop
            else:
                trapped = tab.evaluate(f"i => ({DESCRIBE})(window.__stops[i].el)", index)
            break
        order.append(index)
    tab.evaluate("() => document.getElementById('walk-start')?.remove()")
    problems = tab.evaluate(AUDIT)
    problems["stops"] = len(order)
    problems["expected"] = len(expected)
    problems["left"] = left
    problems["trapped"] = trapped
    return problems


def tab_to(tab: Any, pattern: str, max_tabs: int = 120) -> str:
    """Press Tab until the focused element's description matches ``pattern``."""
    seen = []
    for _press in range(max_tabs):
        tab.keyboard.press("Tab")
        now = _active(tab)
        if re.search(pattern, now):
            return str(now)
        seen.append(now)
    raise AssertionError(f"{pattern!r} not reached by Tab; stops were {seen}")


def _only_frames_unreached(result: dict[str, Any]) -> bool:
    unreached = result.get("unreached") or []
    others = [
        k for k, v in result.items() if v and k not in ("stops", "expected", "left", "unreached")
    ]
    return bool(unreached) and all(u.startswith("iframe") for u in unreached) and not others


def _audit_pages(tab: Any, base: str, paths: list[str] | tuple[str, ...]) -> dict[str, Any]:
    failures: dict[str, Any] = {}
    for path in paths:
        response = tab.goto(base + path)
        assert response is not None and response.status == 200, path
        # previews fill their frames after the page loaded: walk the finished page only
        tab.wait_for_load_state("networkidle")
        result = walk(tab)
        if _only_frames_unreached(result):  # a frame still loading has no Tab stop yet:
            for frame in tab.frames[1:]:  # once loaded, a real defect stays
                frame.wait_for_load_state("load")
            result = walk(tab)
        bad = {k: v for k, v in result.items() if v and k not in ("stops", "expected", "left")}
        if not result["left"]:
            bad["never left the page"] = result["stops"]
        if bad:
            failures[path] = bad
    return failures


def test_a_keyboard_only_day(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    seed_tour(live_web)
    page.goto(live_web.url + "/login")

    # The first Tab stop is the skip link; it shows up and moves focus to <main>.
    page.keyboard.press("Tab")
    assert _active(page) == 'a "Zum Inhalt springen"'
    box = page.evaluate("() => document.activeElement.getBoundingClientRect().toJSON()")
    assert box["left"] >= 0 and box["top"] >= 0 and box["width"] > 0, box
    page.keyboard.press("Enter")
    assert _active(page).startswith("main#content")

    # From <main>, the next stop is the login form's first field.
    page.keyboard.press("Tab")
    assert _active(page) == "input#email[name=email]"
    page.keyboard.type(ADMIN)
    page.keyboard.press("Tab")
    assert _active(page) == "input#password[name=password]"
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login" not in url)

    # An admin lands on the overview; the menu's "Anfragen" opens the list from the keyboard.
    tab_to(page, r'^a "Anfragen"$')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/leads$"))
    # The list: the customer's name is a link that Tab reaches and Enter opens.
    tab_to(page, r'^a "Fritz Fröhlich"$')
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r"/leads/\d+$"))
    assert "Fritz Fröhlich" in page.locator("h1").inner_text()

    # Log a contact: the action bar opens its dialog with Enter, the focus lands on the first
    # field; choose the channel with the arrow keys, type a note, submit with Enter.
    tab_to(page, r'^a#action-contact "Kontakt eintragen"$')
    page.keyboard.press("Enter")
    expect(page.locator("select#channel")).to_be_focused()
    page.keyboard.press("ArrowDown")
    assert page.locator("#form-contact select#channel").input_value() == "visit"
    page.keyboard.press("Tab")  # the outcome: "reached" is preselected (seed 000's ladder)
    assert _active(page).startswith("select#outcome")
    assert page.locator("#form-contact select#outcome").input_value() == "reached"
    page.keyboard.press("Tab")
    assert _active(page) == "input#contact-note[name=note]"
    page.keyboard.type("Kam zur Probefahrt")
    page.keyboard.press("Tab")
    assert _active(page) == 'input#contact-submit[name=submit] "Kontakt eintragen"'
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.get_by_role("status").first.inner_text() == (
        "Kontakt eingetragen: Die Anfrage gilt als beantwortet."
    )
    assert page.locator("#lead-status").inner_text() == "kontaktiert"

    # A dialog closes with Escape and gives the focus back to the button that opened it.
    tab_to(page, r'^a#action-status "Status"$')
    page.keyboard.press("Enter")
    expect(page.locator("select#stage")).to_be_focused()
    page.keyboard.press("Escape")
    page.locator("#dlg-status").wait_for(state="hidden")
    expect(page.locator("#action-status")).to_be_focused()

    # Disclosures open and close from the keyboard: the admin's technical details, and in
    # them the original mail's headers.
    summary = tab_to(page, r'^summary "Technische Details')
    technical = page.locator("details#technical")
    assert technical.evaluate("d => d.open") is False, summary
    page.keyboard.press("Enter")
    assert technical.evaluate("d => d.open") is True
    summary = tab_to(page, r'^summary "Kopfzeilen')
    headers = page.locator("details.headers")
    assert headers.evaluate("d => d.open") is False, summary
    page.keyboard.press("Enter")
    assert headers.evaluate("d => d.open") is True
    assert page.locator("dl.headers").is_visible()
    page.keyboard.press("Space")
    assert headers.evaluate("d => d.open") is False


def test_every_page_is_keyboard_navigable(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    seed_tour(live_web)
    failures = _audit_pages(page, live_web.url, (*PUBLIC_PAGES, reset_page(live_web)))
    log_in(page, live_web.url, ADMIN)
    failures.update(_audit_pages(page, live_web.url, tour_pages(live_web)))
    assert not failures, failures


def test_language_switch_by_keyboard(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    seed_tour(live_web)  # with no user yet, /login is the one-time setup page
    page.goto(live_web.url + "/login")
    tab_to(page, r'^button "English"$')
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.locator("h1").inner_text() == "Log in"
    page.keyboard.press("Tab")
    assert _active(page) == 'a "Skip to content"'
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert _active(page) == "input#email[name=email]"


def test_on_a_phone_the_action_bar_comes_first_and_stays(page: Any, live_web: LiveWeb) -> None:  # noqa: F811
    """On a phone the lead page's action bar comes right after the heading, in the visual
    order and in the Tab order, and stays at the top of the screen while the page scrolls."""
    seed_tour(live_web)
    log_in(page, live_web.url, ADMIN)
    page.set_viewport_size({"width": 390, "height": 844})
    lead_path = next(p for p in tour_pages(live_web) if re.fullmatch(r"/leads/\d+", p))
    page.goto(live_web.url + lead_path)
    bar = page.locator("nav#lead-actions")
    conversation = page.locator("#conversation").bounding_box()
    top = bar.bounding_box()
    assert top and conversation and top["y"] < conversation["y"]  # before the work
    assert top["y"] + top["height"] < 844  # on the first screen
    # every action is on screen at once (no sideways scrolling inside the bar)
    for button in bar.locator("a, button").all():
        box = button.bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= 390, button.inner_text()
    page.keyboard.press("Tab")  # the skip link
    page.keyboard.press("Enter")
    stops = []
    for _press in range(3):  # the customer's phone and address at most, then the bar
        page.keyboard.press("Tab")
        stops.append(_active(page))
        if page.evaluate("() => !!document.activeElement.closest('nav#lead-actions')"):
            break
    assert stops[-1] == 'a#action-answer "Antworten"', stops
    # scrolled far down, the bar is still at the top edge
    page.evaluate("window.scrollTo(0, document.documentElement.scrollHeight)")
    stuck = bar.bounding_box()
    assert stuck and abs(stuck["y"]) <= 1 and bar.is_visible()
    page.set_viewport_size({"width": 1366, "height": 900})
    assert not page.get_by_role("link", name="Zu den Aktionen").count()
