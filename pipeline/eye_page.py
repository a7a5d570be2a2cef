"""The eye step's page: a tiny HTTP server on the local machine (the standard library's `http.server`) that
shows a blind set one image at a time and saves every answer as it is given.

Routes: `/` the page (static: it names nothing of the set), `/state` where the session stands (rater,
progress, the opaque id of the next image), `/image/<id>.png` an image, `POST /answer` and `POST /undo`.
Answers go to an append-only JSON-lines file (pipeline/core/judges/eye.py), written and flushed to disk
before the page is answered: what the page shows as answered is on disk, so a closed tab or a killed step
loses nothing. What each image is stays in the process; the page, its URLs and its state never say.
"""

from __future__ import annotations

import io
import json
import os
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from pipeline.core.judges import eye

SCALE = 12  # each 28 x 28 image is sent as 336 x 336, nearest neighbour: large, and no browser smoothing


class Session:
    """One rater's session on one set: the items in the order shown, the answers given, the log file."""

    def __init__(self, items: list[eye.Item], log: Path, header: dict, answers: list[eye.Answer]):
        self.items, self.log, self.header = items, log, header
        self.by_id = {item.image_id: item for item in items}
        self.answers = list(answers)
        self.lock = threading.Lock()
        self.done = threading.Event()
        self._png: dict[str, bytes] = {}
        if len(self.answers) == len(items):
            self.done.set()

    def _append(self, entry: dict) -> None:
        """One line, on disk before the page is answered; a new file starts with the header naming the set."""
        if not self.log.exists():
            self.log.parent.mkdir(parents=True, exist_ok=True)
            self.log.write_text(json.dumps(self.header) + "\n", encoding="utf-8")
        with open(self.log, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(entry) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def state(self) -> dict:
        answered = {a.image_id for a in self.answers}
        current = next((item.image_id for item in self.items if item.image_id not in answered), None)
        return {
            "rater": self.header["rater"],
            "total": len(self.items),
            "answered": len(self.answers),
            "current": current,
            "done": current is None,
        }

    def answer(self, entry: dict) -> dict:
        with self.lock:
            answer = eye.check_answer(entry, set(self.by_id))
            if answer.image_id != self.state()["current"]:
                raise ValueError(f"image {answer.image_id} is not the one being shown")
            self._append(eye.answer_line(answer))
            self.answers.append(answer)
            return self.state()

    def undo(self) -> dict:
        with self.lock:
            if self.answers:
                self._append({"undo": self.answers[-1].image_id})
                self.answers.pop()
            return self.state()

    def png(self, image_id: str) -> bytes | None:
        item = self.by_id.get(image_id)
        if item is None:
            return None
        if image_id not in self._png:
            from PIL import Image

            buffer = io.BytesIO()
            picture = Image.fromarray(item.pixels.astype("uint8"), mode="L")
            picture.resize((28 * SCALE, 28 * SCALE), Image.NEAREST).save(buffer, format="PNG")
            self._png[image_id] = buffer.getvalue()
        return self._png[image_id]


def handler_for(session: Session) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format, *args):  # noqa: A002 - the standard library's name
            pass  # no access log on the step's output

        def send(self, status: int, body: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def send_json(self, data: dict, status: int = 200) -> None:
            self.send(status, json.dumps(data).encode(), "application/json")

        def do_GET(self):
            if self.path == "/":
                self.send(200, PAGE.encode(), "text/html; charset=utf-8")
            elif self.path == "/state":
                with session.lock:
                    self.send_json(session.state())
            elif self.path.startswith("/image/") and self.path.endswith(".png"):
                png = session.png(self.path[len("/image/") : -len(".png")])
                self.send(200, png, "image/png") if png else self.send(404, b"no such image", "text/plain")
            else:
                self.send(404, b"not found", "text/plain")

        def do_POST(self):
            try:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                if self.path == "/answer":
                    state = session.answer(body)
                elif self.path == "/undo":
                    state = session.undo()
                else:
                    return self.send(404, b"not found", "text/plain")
            except (ValueError, TypeError, AttributeError) as error:
                return self.send_json({"error": str(error)}, 400)
            self.send_json(state)
            if state["done"]:
                session.done.set()

    return Handler


@contextmanager
def serving(session: Session, host: str, port: int):
    """The page served from a background thread while in the block; yields its address."""
    server = ThreadingHTTPServer((host, port), handler_for(session))
    thread = threading.Thread(target=server.serve_forever, name="eye-page", daemon=True)
    thread.start()
    try:
        shown = f"[{host}]" if ":" in host else host
        yield f"http://{shown}:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Which digit? Real or generated?</title>
<link rel="icon" href="data:,">
<style>
body { font-family: system-ui, sans-serif; max-width: 760px; margin: 1.5em auto; color: #222; }
#image { width: 336px; height: 336px; image-rendering: pixelated; border: 1px solid #999; display: block; margin: 1em auto; }
progress { width: 100%; height: 1.2em; }
.keys button { font-size: 1.2em; min-width: 2.6em; margin: 0.15em; padding: 0.3em; }
.keys button.chosen { background: #2a6; color: white; }
.row { text-align: center; margin: 0.4em 0; }
.note { color: #555; font-size: 0.9em; }
#done { font-size: 1.3em; text-align: center; }
</style></head>
<body>
<h1>Which digit is it, and is it real or generated?</h1>
<p>Rater: <b id="rater"></b>. <span id="progress-text"></span></p>
<progress id="progress" value="0" max="1"></progress>
<div id="question">
<img id="image" alt="the image to judge">
<div class="row keys" id="digits"></div>
<div class="row keys"><button data-kind="digit" data-value="-1">no digit (n)</button></div>
<div class="row keys"><button data-kind="says" data-value="real">real (r)</button>
<button data-kind="says" data-value="generated">generated (g)</button>
<button id="undo">undo (u)</button></div>
<p class="note">Keys: 0-9 the digit, n no digit, r real, g generated (both a digit and real/generated, in
either order), u undo. Every answer is saved as it is given: close the tab or stop the step at any time,
and the same command resumes where you stopped. Some images are real test digits, the others generated.</p>
</div>
<p id="done" hidden>All answered and saved: the step logs the session and ends. You may close this tab.</p>
<p id="error" class="note"></p>
<script>
"use strict";
let state = null, digit = null, says = null, busy = false;
const $ = (id) => document.getElementById(id);
for (let d = 0; d <= 9; d++) {
  const b = document.createElement("button");
  b.dataset.kind = "digit"; b.dataset.value = String(d); b.textContent = String(d);
  $("digits").appendChild(b);
}
function render() {
  $("rater").textContent = state.rater;
  $("progress").max = state.total; $("progress").value = state.answered;
  $("progress-text").textContent = state.answered + " of " + state.total + " answered";
  document.body.dataset.answered = String(state.answered);
  document.body.dataset.done = String(state.done);
  $("question").hidden = state.done; $("done").hidden = !state.done;
  if (!state.done && $("image").dataset.id !== state.current) {
    $("image").dataset.id = state.current;
    $("image").src = "/image/" + state.current + ".png";
  }
  for (const b of document.querySelectorAll("button[data-kind]")) {
    const chosen = b.dataset.kind === "digit" ? digit : says;
    b.classList.toggle("chosen", chosen !== null && String(chosen) === b.dataset.value);
  }
}
function show(next) { state = next; digit = null; says = null; busy = false; render(); }
async function post(path, body) {
  busy = true;
  const response = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)});
  const answer = await response.json();
  if (answer.error) { $("error").textContent = answer.error; busy = false; return; }
  show(answer);
}
function choose(kind, value) {
  if (busy || !state || state.done) return;
  if (kind === "digit") digit = value; else says = value;
  render();
  if (digit !== null && says !== null) post("/answer", {id: state.current, digit: digit, says: says});
}
function undo() {
  if (busy || !state) return;
  if (digit !== null || says !== null) { digit = null; says = null; render(); return; }
  if (state.answered > 0) post("/undo", {});
}
document.addEventListener("click", (e) => {
  const b = e.target.closest("button");
  if (!b) return;
  if (b.id === "undo") undo();
  else choose(b.dataset.kind, b.dataset.kind === "digit" ? Number(b.dataset.value) : b.dataset.value);
});
document.addEventListener("keydown", (e) => {
  if (e.key >= "0" && e.key <= "9") choose("digit", Number(e.key));
  else if (e.key === "n") choose("digit", -1);
  else if (e.key === "r") choose("says", "real");
  else if (e.key === "g") choose("says", "generated");
  else if (e.key === "u") undo();
});
fetch("/state").then((r) => r.json()).then(show);
</script>
</body></html>
"""
