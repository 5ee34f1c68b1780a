#!/usr/bin/env python3
"""Renders a `cutkit report` index.html in headless Chromium and checks what a reader sees.

usage: check_report.py INDEX_HTML SCREENSHOT_PNG [CHROMIUM [HEIGHT]]

1. --dump-dom: the DOM Chromium built holds as many <svg> elements as the file has, each with
   a viewBox, a size and at least one drawn <path>; the flagged-token spans and the plots'
   <figure>s are there; no <script> element exists (run text is escaped, so a token reading
   "<script>" stays text) and no element loads anything from the network.
2. --screenshot: a PNG of the page (kept at SCREENSHOT_PNG as an artefact) that is not blank,
   and in which the first plot colour (#0072B2) and the flagged-token highlight (#ffd2c2)
   were actually painted. The PNG is decoded here with zlib (no PIL).

Exit 0: pass; 77: no Chromium (skipped); 1: a check failed (the reason on stderr).
"""
import html.parser
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zlib

TIMEOUT = 120


def fail(msg):
    print("check_report: FAIL: " + msg, file=sys.stderr)
    sys.exit(1)


def chromium(binary, args, profile):
    cmd = [binary, "--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run",
           "--disable-dev-shm-usage", "--hide-scrollbars", "--user-data-dir=" + profile] + args
    try:
        r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        fail("chromium did not finish within %d s: %s" % (TIMEOUT, " ".join(cmd)))
    return r


class Dom(html.parser.HTMLParser):
    """Counts what the checks need in the serialized DOM."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.svgs = []          # attrs of each <svg>, with the number of drawn paths inside
        self.in_svg = 0
        self.flagged = 0
        self.tokens = 0
        self.figures = 0
        self.scripts = 0
        self.remote = []
        self.token_texts = []
        self._in_token = False

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "svg":
            self.svgs.append({"attrs": a, "paths": 0})
            self.in_svg += 1
        elif tag == "path" and self.in_svg and a.get("d", "").strip():
            self.svgs[-1]["paths"] += 1
        elif tag == "script":
            self.scripts += 1
        elif tag == "figure":
            self.figures += 1
        elif tag == "span" and "t" in a.get("class", "").split():
            self.tokens += 1
            self.flagged += "f" in a.get("class", "").split()
            self._in_token = True
            self.token_texts.append("")
        for key in ("src", "href"):
            v = a.get(key, "")
            if v.startswith(("http:", "https:", "//")):
                self.remote.append(v)

    def handle_endtag(self, tag):
        if tag == "svg":
            self.in_svg -= 1
        elif tag == "span":
            self._in_token = False

    def handle_data(self, data):
        if self._in_token:
            self.token_texts[-1] += data


def png_pixels(path):
    """(width, height, rows of RGB(A) bytes) of an 8-bit non-interlaced RGB/RGBA PNG."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail("%s is not a PNG" % path)
    pos, idat, ihdr = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind = data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h, depth, ctype, _, _, interlace = ihdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        fail("unexpected PNG format: depth %d, colour type %d, interlace %d" % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        ftype = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if ftype == 1:
                line[i] = (line[i] + a) & 255
            elif ftype == 2:
                line[i] = (line[i] + b) & 255
            elif ftype == 3:
                line[i] = (line[i] + ((a + b) >> 1)) & 255
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
                line[i] = (line[i] + pred) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def near(px, rgb, tol=24):
    return all(abs(px[k] - rgb[k]) <= tol for k in range(3))


def main():
    if len(sys.argv) < 3:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    page, shot = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    binary = sys.argv[3] if len(sys.argv) > 3 else "/usr/bin/chromium"
    # the window height: a long page (many runs) needs more to reach its example tokens
    height = int(sys.argv[4]) if len(sys.argv) > 4 else 3600
    if not os.access(binary, os.X_OK):
        print("check_report: skipped: no %s" % binary, file=sys.stderr)
        sys.exit(77)
    with open(page, encoding="utf-8") as f:
        source = f.read()
    want_svgs = source.count("<svg ")
    url = "file://" + page
    profile = tempfile.mkdtemp(prefix="cutkit-chromium-")
    try:
        r = chromium(binary, ["--dump-dom", url], profile)
        if r.returncode != 0 or b"</html>" not in r.stdout:
            fail("chromium --dump-dom exited %d: %s" % (r.returncode, r.stderr.decode()[-2000:]))
        dom = Dom()
        dom.feed(r.stdout.decode("utf-8"))
        if want_svgs == 0:
            fail("the page has no <svg> at all")
        if len(dom.svgs) != want_svgs:
            fail("the file has %d <svg>, the DOM %d" % (want_svgs, len(dom.svgs)))
        for i, s in enumerate(dom.svgs):
            a = s["attrs"]
            if not a.get("viewbox") or float(a.get("width", 0)) <= 0 or float(a.get("height", 0)) <= 0:
                fail("svg %d has no viewBox or size: %r" % (i, a))
            if s["paths"] == 0:
                fail("svg %d draws no path" % i)
        if dom.figures != want_svgs:
            fail("%d figures for %d plots" % (dom.figures, want_svgs))
        if dom.scripts:
            fail("the DOM has %d <script> elements: some text was not escaped" % dom.scripts)
        if dom.remote:
            fail("the page loads from the network: %r" % dom.remote[:3])
        if dom.tokens and not dom.flagged:
            fail("%d tokens, none highlighted" % dom.tokens)

        os.makedirs(os.path.dirname(shot), exist_ok=True)
        if os.path.exists(shot):
            os.unlink(shot)
        r = chromium(binary, ["--screenshot=" + shot, "--window-size=1280,%d" % height, url], profile)
        if r.returncode != 0 or not os.path.exists(shot):
            fail("chromium --screenshot exited %d: %s" % (r.returncode, r.stderr.decode()[-2000:]))
        w, h, bpp, rows = png_pixels(shot)
        white = blue = highlight = 0
        for row in rows:
            for x in range(0, w * bpp, bpp):
                px = row[x:x + 3]
                if px[0] > 245 and px[1] > 245 and px[2] > 245:
                    white += 1
                elif near(px, (0x00, 0x72, 0xB2)):
                    blue += 1
                elif near(px, (0xFF, 0xD2, 0xC2), 6):
                    highlight += 1
        total = w * h
        print("check_report: %d svg, %d figures, %d tokens (%d flagged); screenshot %dx%d: "
              "%.1f%% not white, %d plot-blue px, %d highlight px"
              % (len(dom.svgs), dom.figures, dom.tokens, dom.flagged, w, h,
                 100.0 * (total - white) / total, blue, highlight))
        if total - white < total // 100:
            fail("the screenshot is (almost) blank")
        if blue < 50:
            fail("no plot line painted (%d pixels of #0072B2)" % blue)
        if dom.flagged and highlight < 50:
            fail("no flagged-token highlight painted (%d pixels of #ffd2c2)" % highlight)
    finally:
        shutil.rmtree(profile, ignore_errors=True)
    print("check_report: ok")


if __name__ == "__main__":
    main()
