"""A small real X window for demos and tests: a text area to type into and a
canvas to click, drag and scroll on. It prints one JSON line to stdout when it
is mapped, with its X window id and geometry, so a driver knows where to act.

    python -m tracework.demo.windows --title "Notes" --wm-class DemoNotes --x 40 --y 40
"""

from __future__ import annotations

import argparse
import json
import sys
import tkinter as tk


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--title", required=True)
    parser.add_argument("--wm-class", default="TraceworkDemo")
    parser.add_argument("--x", type=int, default=0)
    parser.add_argument("--y", type=int, default=0)
    parser.add_argument("--width", type=int, default=560)
    parser.add_argument("--height", type=int, default=420)
    args = parser.parse_args(argv)

    root = tk.Tk(className=args.wm_class)
    root.title(args.title)
    root.geometry(f"{args.width}x{args.height}+{args.x}+{args.y}")
    text = tk.Text(root, height=8, wrap="word")
    text.pack(fill="x")
    canvas = tk.Canvas(root, background="white")
    canvas.pack(fill="both", expand=True)
    marks: list[int] = []

    def drag(event: tk.Event) -> None:
        marks.append(canvas.create_oval(event.x - 2, event.y - 2, event.x + 2, event.y + 2, fill="black"))

    canvas.bind("<B1-Motion>", drag)
    canvas.bind("<Button-1>", lambda e: canvas.focus_set())

    def announce() -> None:
        root.update_idletasks()
        info = {
            "title": args.title,
            "window_id": root.winfo_id(),
            "frame_id": int(root.wm_frame(), 16),
            "x": root.winfo_rootx(),
            "y": root.winfo_rooty(),
            "width": root.winfo_width(),
            "height": root.winfo_height(),
            "text_height": text.winfo_height(),
        }
        sys.stdout.write(json.dumps(info) + "\n")
        sys.stdout.flush()

    root.after(300, announce)
    root.mainloop()


if __name__ == "__main__":
    main()
