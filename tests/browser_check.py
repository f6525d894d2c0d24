"""Open a report in headless Chromium and say what the browser saw, as JSON.

Usage: browser_check.py CHROMIUM REPORT.html [SCREENSHOT.png] [--width PX] [--height PX]
                        [--full-page] [--print]

Run as a separate process so that Playwright's event loop never meets pytest's. Used by the
report test (at a desk's width and a phone's), and to make the README's screenshot.

Besides errors, requests and images, it measures the layout at the given width: how wide the
page is (wider than the window: something sticks out), which elements stick out (a table may
scroll inside its own box, the page may not), which tables do scroll, which verdicts in the tables
of claims lie off the window's right edge, which text in a table cell wraps over four lines, which
tables stack as cards (their column headers hidden) and which of their cells do not say what they
are, where the scoreboard and the orderings panel are, how large the type of each figure is drawn,
and how tall the page is. With --print it lays the page out as for a printer (CSS media print)
at the given width, a sheet's printable width: a box that scrolls on a screen is cut off on paper,
so there every table must fit and nothing may stay folded. The screenshot is taken first, as the page opens; the rest is measured with
every section's <details> open (a note folded inside a cell stays folded: that is how the table
reads).
"""

import argparse
import json
from pathlib import Path

from playwright.sync_api import sync_playwright

# The flags the machine's documentation gives for Debian's chromium without network or GPU.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip

# Elements that stick out of the window, outside a box that scrolls on its own.
OVERFLOWING = """() => {
  const width = document.documentElement.clientWidth;
  return Array.from(document.querySelectorAll('body *'))
    .filter(el => el.getBoundingClientRect().right > width + 1 && !el.closest('.scroll'))
    .slice(0, 10)
    .map(el => `${el.tagName.toLowerCase()}#${el.id}.${el.className}: `
               + (el.textContent || '').trim().slice(0, 60));
}"""

# Text in table cells that wraps over four lines: [lines, the text's start].
LONG_CELLS = """() => {
  const found = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const cell = node.parentElement.closest('td, th');
    if (!cell || !node.textContent.trim() || !node.parentElement.checkVisibility()) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    const lines = new Set(Array.from(range.getClientRects())
      .filter(r => r.width > 0).map(r => Math.round(r.top)));
    if (lines.size > 4) found.push([lines.size, node.textContent.trim().slice(0, 80)]);
  }
  return found;
}"""

# Boxes that scroll sideways because their table is wider than the page: [its caption's start,
# else its first header]. Every table has a caption; several tables' first header is the same
# word ("experiment", "checkpoint").
SCROLLING = """() => Array.from(document.querySelectorAll('.scroll'))
  .filter(box => box.checkVisibility() && box.scrollWidth > box.clientWidth + 1)
  .map(box => (box.querySelector('caption') || box.querySelector('th') || box)
                .textContent.trim().slice(0, 60))"""

# Tables whose first row, their column headers, is hidden (stacked as cards): [caption's start].
STACKED = """() => Array.from(document.querySelectorAll('table'))
  .filter(table => table.checkVisibility() && !table.rows[0].checkVisibility())
  .map(table => (table.caption || table).textContent.trim().slice(0, 60))"""

# Cells of a table whose column headers are hidden (a phone's cards) that say nothing of what
# they are: no label drawn before them (::before, from data-label or data-source), not the row's
# first cell (its name), not a verdict (which names itself). [the row's name, the cell's text].
# Stacked without its label, "1" or "yes" under a run's name reads as nothing.
UNLABELLED = """() => Array.from(document.querySelectorAll('td'))
  .filter(cell => cell.checkVisibility() && cell.textContent.trim())
  .filter(cell => !cell.closest('table').rows[0].checkVisibility())
  .filter(cell => cell !== cell.parentElement.cells[0] && !cell.querySelector('.verdict'))
  .filter(cell => ['none', 'normal', ''].includes(getComputedStyle(cell, '::before').content))
  .slice(0, 10)
  .map(cell => [cell.parentElement.cells[0].textContent.trim().slice(0, 40),
                cell.textContent.trim().slice(0, 40)])"""

# Verdicts in the tables of claims that lie beyond the window's right edge (in a box that
# scrolls sideways, or off the page): [the row's first cell, the verdict]. A phone showed the
# first columns of an eight-column table and none of its verdicts.
VERDICTS_OFF_SCREEN = """() => {
  const width = document.documentElement.clientWidth;
  return Array.from(document.querySelectorAll('td.verdict-cell'))
    .filter(cell => cell.checkVisibility())
    .filter(cell => { const r = cell.getBoundingClientRect(); return r.right > width + 1 || r.left < 0; })
    .slice(0, 10)
    .map(cell => [cell.parentElement.cells[0].textContent.trim().slice(0, 40),
                  cell.querySelector('.verdict').textContent.trim()]);
}"""

# The type of each figure as the window draws it, in CSS pixels: {width: the image's, legend:
# its legend's smallest text, text: any text's smallest, phone: whether the <picture> chose its
# phone source}. The figure the image shows (its currentSrc: the <source> a <picture> chose) is
# laid out inline at the image's size, out of sight: matplotlib draws each text as glyph paths
# 100 units to the em, in a group scaled to the text's size, so that group's transform to the
# screen gives the em in pixels. A desk's figure on a phone drew its legend under 4 pixels.
FIGURE_TYPE = """() => Array.from(document.querySelectorAll('figure img'))
  .filter(img => img.checkVisibility())
  .map(img => {
    const bytes = Uint8Array.from(atob(img.currentSrc.split(',')[1]), c => c.charCodeAt(0));
    const svg = new DOMParser().parseFromString(new TextDecoder().decode(bytes),
                                                'image/svg+xml').documentElement;
    const box = img.getBoundingClientRect();
    svg.setAttribute('width', box.width);
    svg.setAttribute('height', box.height);
    const holder = document.createElement('div');
    holder.style.cssText = 'position: absolute; left: 0; top: 0; visibility: hidden';
    holder.appendChild(document.importNode(svg, true));
    document.body.appendChild(holder);
    const em = sel => Array.from(holder.querySelectorAll(sel))
      .map(g => { const m = g.getScreenCTM(); return Math.hypot(m.a, m.b) * 100; });
    const legend = em('#legend g[transform*="scale("]'), text = em('g[transform*="scale("]');
    holder.remove();
    return {width: box.width, legend: legend.length ? Math.min(...legend) : null,
            text: text.length ? Math.min(...text) : null, phone: img.currentSrc !== img.src};
  })"""

# Folded sections (<details>) whose content is hidden as the page opens: on paper, where
# nothing unfolds, the run table, the rules in full and the notes behind them were lost.
FOLDED = """() => Array.from(document.querySelectorAll('details'))
  .filter(d => Array.from(d.children).some(c => c.tagName !== 'SUMMARY' && !c.checkVisibility()))
  .length"""

BOX = """(selector) => {
  const el = document.querySelector(selector);
  if (!el) return null;
  const r = el.getBoundingClientRect();
  return {top: r.top + window.scrollY, left: r.left, right: r.right,
          bottom: r.bottom + window.scrollY};
}"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("chromium")
    parser.add_argument("page", type=Path)
    parser.add_argument("screenshot", nargs="?")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--full-page", action="store_true")
    parser.add_argument("--print", action="store_true", help="lay out for a printer")
    options = parser.parse_args()
    page_path = options.page.resolve()
    seen = {"console_errors": [], "page_errors": [], "external_requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=options.chromium, args=ARGS)
        page = browser.new_page(viewport={"width": options.width, "height": options.height})
        page.on("console", lambda m: m.type == "error" and seen["console_errors"].append(m.text))
        page.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
        page.on(
            "request",
            lambda r: (
                r.url.startswith(("data:", page_path.as_uri()))
                or seen["external_requests"].append(r.url)
            ),
        )
        if options.print:
            page.emulate_media(media="print")
        page.goto(page_path.as_uri(), wait_until="load")
        seen["title"] = page.title()
        seen["images"] = page.evaluate("document.images.length")
        seen["images_loaded"] = page.evaluate(
            "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
        )
        seen["broken_images"] = page.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length"
        )
        if options.screenshot:
            page.screenshot(path=options.screenshot, full_page=options.full_page)
        seen["width"] = options.width
        seen["page_width"] = page.evaluate("document.documentElement.scrollWidth")
        seen["page_height"] = page.evaluate("document.documentElement.scrollHeight")
        seen["boxes"] = {name: page.evaluate(BOX, selector) for name, selector in
                         (("scoreboard", "#scoreboard"), ("orderings", "#orderings-panel"))}  # fmt: skip
        seen["folded"] = page.evaluate(FOLDED)
        page.evaluate("document.querySelectorAll('details').forEach("
                      "d => { if (!d.closest('td, th')) d.open = true; })")  # fmt: skip
        seen["overflowing"] = page.evaluate(OVERFLOWING)
        seen["long_cells"] = page.evaluate(LONG_CELLS)
        seen["scrolling_tables"] = page.evaluate(SCROLLING)
        seen["stacked_tables"] = page.evaluate(STACKED)
        seen["unlabelled_cells"] = page.evaluate(UNLABELLED)
        seen["verdict_cells"] = page.evaluate("document.querySelectorAll('td.verdict-cell').length")
        seen["verdicts_off_screen"] = page.evaluate(VERDICTS_OFF_SCREEN)
        seen["figures"] = page.evaluate(FIGURE_TYPE)
        browser.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
