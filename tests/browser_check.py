"""Open a report in headless Chromium and say what the browser saw, as JSON.

Usage: browser_check.py CHROMIUM REPORT.html [SCREENSHOT.png]

Run as a separate process so that Playwright's event loop never meets pytest's. Used by the
report test, and to make the README's screenshot.
"""

import json
import sys
from pathlib import Path

from playwright.sync_api import sync_playwright

# The flags the machine's documentation gives for Debian's chromium without network or GPU.
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    chromium, page_path = sys.argv[1], Path(sys.argv[2]).resolve()
    shot = sys.argv[3] if len(sys.argv) > 3 else None
    seen = {"console_errors": [], "page_errors": [], "external_requests": []}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=ARGS)
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("console", lambda m: m.type == "error" and seen["console_errors"].append(m.text))
        page.on("pageerror", lambda e: seen["page_errors"].append(str(e)))
        page.on(
            "request",
            lambda r: (
                r.url.startswith(("data:", page_path.as_uri()))
                or seen["external_requests"].append(r.url)
            ),
        )
        page.goto(page_path.as_uri(), wait_until="load")
        seen["title"] = page.title()
        seen["images_loaded"] = page.evaluate(
            "Array.from(document.images).filter(i => i.complete && i.naturalWidth > 0).length"
        )
        seen["broken_images"] = page.evaluate(
            "Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).length"
        )
        if shot:
            page.screenshot(path=shot)
        browser.close()
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
