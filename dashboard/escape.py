"""Text from telemetry and services shown as text, never as markup.

Exception types, operation names, result codes, job names and statuses are whatever a client sent.
Streamlit renders Markdown in st.markdown, captions, alerts, expander and metric labels and metric
values, so `[x](http://evil)` would be a live link and `![i](http://evil/i.png)` a remote image
fetched by every viewer's browser; Plotly renders a subset of HTML (`<a href>`) in titles, legends
and axis labels. Every such string passes through one of these on its way to the page; plain-text
elements (st.code, st.text, st.dataframe, st.json, selectbox options) need neither.
"""

from __future__ import annotations

import html
import re

# Backslash-escaping the ASCII punctuation that makes links, images, emphasis, code, HTML, entities,
# Streamlit's :color[...] directives and $math$: an escaped mark is the mark as text. '.', ':', '-',
# '+' and '=' are left alone: on one line they start nothing worth hiding (autolinks are handled
# below), and `my-model` or `c.txt` stay as they are.
_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#!|~$^&])")
_LINE_BREAKS = re.compile(r"[\r\n\u2028\u2029]+")
# GFM's literal autolinks (http://, www., a@b.c) are found in the text *after* parsing, where no
# escape is left to stop them: an invisible WORD JOINER before ':', '@' and the '.' of 'www.' keeps
# the text from matching, and shows nothing.
_AUTOLINK_ANCHORS = re.compile(r"(?=[:@])|(?<=www)(?=\.)", re.IGNORECASE)
WORD_JOINER = "\u2060"


def markdown(value: object) -> str:
    """`value` as Markdown that renders as its text (with word joiners before ':' and '@'), on one line."""
    text = _AUTOLINK_ANCHORS.sub(WORD_JOINER, _LINE_BREAKS.sub(" ", str(value)))
    return _MARKDOWN.sub(r"\\\1", text)


def plotly(value: object) -> str:
    """`value` as Plotly text: its pseudo-HTML tags and entities shown literally."""
    return html.escape(str(value), quote=False)
