"""Screenshot a page of the Dagster UI after opening one markdown metadata entry.

Dagster shows a long markdown entry (our ``round_picture``) as a "[Show Markdown]" link that opens
a dialog, which ``chromium --screenshot`` cannot click. This drives headless Chromium over the
DevTools protocol instead: load the page, wait for the entry, click its link, wait for the image
in the dialog to load, and capture the page.

Usage: python scripts/screenshot_page.py CHROMIUM URL ENTRY OUT.png
(``websockets`` comes with the webserver's dependencies in the venv.)
"""

from __future__ import annotations

import base64
import itertools
import json
import subprocess
import sys
import tempfile
import time
import urllib.request

from websockets.sync.client import connect

WIDTH, HEIGHT = 1600, 1300
TIMEOUT = 60.0

# Finds the metadata row named ENTRY and clicks its "Show Markdown" link (once); true once the
# dialog's image has loaded.
CLICK = """(() => {
  const shown = [...document.querySelectorAll('img[src^="data:image/png"]')]
      .some(image => image.complete && image.naturalWidth);
  if (shown) return true;
  const cell = [...document.querySelectorAll('td')].find(td => td.textContent.trim() === %s);
  const link = cell && [...cell.parentElement.querySelectorAll('a')]
      .find(a => a.textContent.includes('Show Markdown'));
  if (link && !window.clicked) { link.click(); window.clicked = true; }
  return false;
})()"""


def main(chromium: str, url: str, entry: str, out: str) -> None:
    with tempfile.TemporaryDirectory() as profile:
        browser = subprocess.Popen(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={WIDTH},{HEIGHT}", "--remote-debugging-port=0",
             f"--user-data-dir={profile}", url],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            port = _devtools_port(profile)
            pages = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json"))
            page = next(p for p in pages if p["type"] == "page")
            with connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
                ids = itertools.count(1)

                def call(method: str, **params) -> dict:
                    number = next(ids)
                    ws.send(json.dumps({"id": number, "method": method, "params": params}))
                    while True:
                        answer = json.loads(ws.recv())
                        if answer.get("id") == number:
                            return answer.get("result", {})

                deadline = time.monotonic() + TIMEOUT
                expression = CLICK % json.dumps(entry)
                while not call("Runtime.evaluate", expression=expression)["result"].get("value"):
                    if time.monotonic() > deadline:
                        raise SystemExit(f"the entry {entry!r} did not show its image")
                    time.sleep(0.5)
                time.sleep(1)  # let the dialog finish its opening animation
                shot = call("Page.captureScreenshot", format="png")
            with open(out, "wb") as file:
                file.write(base64.b64decode(shot["data"]))
        finally:
            browser.terminate()
            browser.wait(10)


def _devtools_port(profile: str) -> int:
    """Chromium writes the port it chose into the profile's DevToolsActivePort file."""
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        try:
            with open(f"{profile}/DevToolsActivePort") as file:
                return int(file.readline())
        except (FileNotFoundError, ValueError):
            time.sleep(0.2)
    raise SystemExit("chromium did not open its DevTools port")


if __name__ == "__main__":
    main(*sys.argv[1:])
