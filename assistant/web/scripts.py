"""The scripts the patients' page runs in the browser (Gradio ``js=``): each is a
JavaScript function given as a string; ``tests/test_page_scripts.py`` parses each with
``node --check``."""

from __future__ import annotations

import json

from assistant.web.booking_form import FORM_FIELDS, REQUIRED_IDS

STORAGE_KEY = "scarguide-session"
ENDED_KEY = "scarguide-ended"

# the tab's conversation, and the one it ended (shown again after a reload, with its
# booking); a conversation going on forgets the ended one
SAVE_SESSION_JS = f"""(sid, ended) => {{
  try {{
    if (sid) {{ sessionStorage.setItem('{STORAGE_KEY}', sid); }}
    else {{ sessionStorage.removeItem('{STORAGE_KEY}'); }}
    if (!sid && ended) {{ sessionStorage.setItem('{ENDED_KEY}', ended); }}
    else {{ sessionStorage.removeItem('{ENDED_KEY}'); }}
  }} catch (e) {{}}
  return [];
}}"""
# a question leaves the box the moment it is sent (Enter in the box, or Send): the page
# notes the box's text then, before the app reads the box (which, on a busy device, can be
# after the next keys were typed); SEND_JS takes the notes in order
NOTE_SENT_JS = """
  if (!window.__scarguideSent) {
    window.__scarguideSent = [];
    const note = () => {
      const box = document.querySelector('#msg textarea, #msg input');
      if (box) { window.__scarguideSent.push({text: box.value, at: Date.now()}); }
    };
    document.addEventListener('keydown', e => {
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing
          && e.target && e.target.closest && e.target.closest('#msg')) { note(); }
    }, true);
    document.addEventListener('click', e => {
      if (e.target && e.target.closest && e.target.closest('#send')) { note(); }
    }, true);
  }
"""
# Gradio's chatbot names each message by its raw content (Markdown, escapes and all):
# the page renames each one from the text the patient sees, whenever Gradio sets it again
PLAIN_LABELS_JS = """
  if (!window.__scarguideLabels) {
    window.__scarguideLabels = true;
    const rename = el => {
      const who = el.dataset.testid === 'user' ? 'You' : 'The assistant';
      const plain = `${who}: ${(el.innerText || '').replace(/\\s+/g, ' ').trim()}`;
      if (el.getAttribute('aria-label') !== plain) { el.setAttribute('aria-label', plain); }
    };
    let queued = false;
    const sweep = () => {
      queued = false;
      document.querySelectorAll('#chat [data-testid=bot][aria-label], '
        + '#chat [data-testid=user][aria-label]').forEach(rename);
    };
    const soon = () => { if (!queued) { queued = true; requestAnimationFrame(sweep); } };
    new MutationObserver(soon).observe(document.body, {subtree: true, childList: true,
      characterData: true, attributes: true, attributeFilter: ['aria-label']});
    sweep();
  }
"""
# on load: the tab's conversation id, as restore's first input (the tab state, the second,
# is the server's); the page starts noting what is sent and naming messages in plain text
READ_SESSION_JS = """(sid, tab, _ended) => {
__NOTE__
__LABELS__
  let stored = '', ended = '';
  try {
    stored = sessionStorage.getItem('__KEY__') || '';
    ended = sessionStorage.getItem('__ENDED__') || '';
  } catch (e) {}
  return [stored, tab === undefined ? null : tab, ended];
}""".replace("__NOTE__", NOTE_SENT_JS.strip("\n")).replace("__KEY__", STORAGE_KEY).replace(
    "__ENDED__", ENDED_KEY).replace(
    "__LABELS__", PLAIN_LABELS_JS.strip("\n"))
# the booking form opens below the chat: bring it into view (on a phone it is off screen);
# its required inputs say so to assistive technology
SHOW_BOOKING_JS = """() => {
  let tries = 0;
  const run = () => {
    const form = document.getElementById('booking');
    const ready = form && form.offsetParent !== null
      && document.querySelector('#b-name input, #b-name textarea');
    if (!ready && tries++ < 40) { setTimeout(run, 50); return; }
    if (form) { form.scrollIntoView({block: "start"}); }
    for (const id of __IDS__) {
      document.querySelectorAll('#' + id + ' input, #' + id + ' textarea')
        .forEach(e => e.setAttribute('aria-required', 'true'));
    }
  };
  setTimeout(run, 50);
  return [];
}""".replace("__IDS__", json.dumps(REQUIRED_IDS))
# after a booking is sent: each input with a problem is marked invalid and described by
# its error; the focus goes to the first one (unless the patient has already moved it, by
# typing in another field), or to the confirmation when it is booked
BOOKING_FOCUS_JS = """(target) => {
  const ids = __IDS__;
  let tries = 0;
  const mark = () => {
    for (const id of ids) {
      const err = document.getElementById(id + '-error');
      const shown = !!(err && err.offsetParent !== null && err.innerText.trim());
      document.querySelectorAll('#' + id + ' input, #' + id + ' textarea').forEach(e => {
        if (shown) {
          e.setAttribute('aria-invalid', 'true');
          e.setAttribute('aria-describedby', id + '-error');
        } else { e.removeAttribute('aria-invalid'); e.removeAttribute('aria-describedby'); }
      });
    }
  };
  const run = () => {
    const box = target ? document.getElementById(target) : null;
    const el = !box ? null : (target === 'booking-done' ? box
      : box.querySelector('input, textarea'));
    const ready = el && el.offsetParent !== null
      && (target === 'booking-done' || (document.getElementById(target + '-error')
          || {}).offsetParent);
    if (target && !ready && tries++ < 40) { setTimeout(run, 50); return; }
    mark();
    if (!el) { return; }
    // a patient already typing somewhere else keeps the focus where they put it
    const active = document.activeElement;
    const moved = active && active !== document.body && !active.closest('#b-submit');
    if (target !== 'booking-done' && moved) { return; }
    if (target === 'booking-done') { el.setAttribute('tabindex', '-1'); }
    el.scrollIntoView({block: 'center'});
    el.focus({preventScroll: true});
  };
  setTimeout(run, 30);
  return [];
}""".replace("__IDS__", json.dumps(list(FORM_FIELDS.values())))
# the chat ended: its note comes into view (it is a live region: it is also announced)
SHOW_ENDED_JS = """() => {
  setTimeout(() => {
    const note = document.getElementById('ended');
    if (note) { note.scrollIntoView({block: 'nearest'}); }
  }, 80);
  return [];
}"""
# each question the page sends gets the next number (its last input): the server answers
# them in this order, whatever order their requests reach it in
NUMBER_JS = """(...inputs) => {
  window.__scarguideAsked = (window.__scarguideAsked || 0) + 1;
  inputs[inputs.length - 1] = window.__scarguideAsked;
  return inputs;
}"""
# a question sent from the box: its text as noted when it was sent (NOTE_SENT_JS; what
# the app read from the box if there is no fresh note), numbered, and out of the box in
# one step: the box keeps only what was typed after it. The answer never writes to the
# box, so a next question can be typed meanwhile
SEND_JS = """(...inputs) => {
  const notes = window.__scarguideSent || [];
  let note = notes.shift();
  while (note && Date.now() - note.at > 10000) { note = notes.shift(); }
  const text = note ? note.text : (inputs[0] || '');
  inputs[0] = text;
  const box = document.querySelector('#msg textarea, #msg input');
  if (box && text.trim() !== '' && box.value.startsWith(text)) {
    box.value = box.value.slice(text.length).replace(/^\\s+/, '');
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }
  return (__NUMBER__)(...inputs);
}""".replace("__NUMBER__", NUMBER_JS)
# the chat shows a question on its way while the ended note is up: it has started a new
# conversation, so the note goes and booking is offered again (a conversation that has
# just started has no booking)
NEW_CONVERSATION_JS = """(chat) => {
  const row = document.getElementById('ended-row');
  const ended = !!(row && row.offsetParent !== null && !row.querySelector('.sg-pending'));
  const last = Array.isArray(chat) && chat.length ? chat[chat.length - 1] : null;
  if (!ended || !last || !JSON.stringify(last).includes('sg-pending')) {
    return [undefined, undefined, undefined];
  }
  const show = {__type__: 'update', visible: true};
  return [{__type__: 'update', visible: false}, show, show];
}"""
# a new conversation: the question box has the focus
FOCUS_QUESTION_JS = """() => {
  setTimeout(() => {
    const box = document.querySelector('#msg textarea, #msg input');
    if (box) { box.focus(); }
  }, 80);
  return [];
}"""
