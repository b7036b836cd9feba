"""WCAG contrast of rendered colours, as Chromium computes them (the browser tests' one helper).

``page_text_colours(page, root)`` lists every piece of text shown under ``root`` with its
colour and the background it is drawn on (the element's and its ancestors' backgrounds,
composited); ``contrast`` is WCAG 2's ratio, ``AA`` the bound for normal text.
"""

from __future__ import annotations

import re

AA = 4.5  # WCAG 2.1 AA, normal text


def _luminance(rgb: tuple[float, float, float]) -> float:
    def channel(c: float) -> float:
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(c) for c in rgb)
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def parse_colour(text: str) -> tuple[float, float, float, float]:
    """Chromium's computed colours: ``rgb(...)``, ``rgba(...)`` or ``color(srgb r g b [/ a])``."""
    if m := re.fullmatch(r"rgba?\(([\d.]+),\s*([\d.]+),\s*([\d.]+)(?:,\s*([\d.]+))?\)", text):
        r, g, b = (float(m.group(i)) / 255 for i in (1, 2, 3))
        return r, g, b, float(m.group(4) or 1)
    if m := re.fullmatch(r"color\(srgb ([\d.e-]+) ([\d.e-]+) ([\d.e-]+)(?: / ([\d.]+))?\)", text):
        return float(m.group(1)), float(m.group(2)), float(m.group(3)), float(m.group(4) or 1)
    raise AssertionError(f"colour not understood: {text}")


def over(top: str, bottom: tuple[float, float, float]) -> tuple[float, float, float]:
    """``top`` (maybe translucent) drawn over the opaque ``bottom``."""
    r, g, b, a = parse_colour(top)
    return tuple(a * c + (1 - a) * d for c, d in zip((r, g, b), bottom))  # type: ignore[return-value]


def contrast(fg: str, bg: str) -> float:
    """WCAG ratio of text ``fg`` on ``bg`` (``fg`` composited over ``bg`` when translucent)."""
    back = parse_colour(bg)[:3]
    lf, lb = _luminance(over(fg, back)), _luminance(back)
    return (max(lf, lb) + 0.05) / (min(lf, lb) + 0.05)


# Each element with its own text: its colour, and the backgrounds of it and every ancestor
# (composited from the page up in Python). Disabled controls are exempt from WCAG's rule.
_TEXTS = """(root) => {
  const out = [];
  for (const el of document.querySelectorAll(root + ', ' + root + ' *')) {
    const own = Array.from(el.childNodes).filter(n => n.nodeType === 3 && n.textContent.trim());
    if (!own.length || el.closest('button:disabled, [aria-disabled="true"]')) continue;
    const box = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (!box.width || !box.height || style.visibility === 'hidden' || style.display === 'none') continue;
    const layers = [];
    for (let a = el; a; a = a.parentElement) {
      layers.push(getComputedStyle(a).backgroundColor);
    }
    out.push({
      text: own.map(n => n.textContent.trim()).join(' ').slice(0, 60),
      cls: el.className && el.className.baseVal === undefined ? el.className : el.tagName,
      fg: style.color,
      layers,
    });
  }
  return out;
}"""


def page_text_colours(page, root: str) -> list[dict]:
    """Every piece of text under ``root`` (a selector): text, class, colour, composited background."""
    found = page.evaluate(_TEXTS, root)
    for item in found:
        back = (1.0, 1.0, 1.0)
        for layer in reversed(item["layers"]):
            back = over(layer, back)
        item["bg"] = "rgb({}, {}, {})".format(*(round(c * 255, 3) for c in back))
    return found


def low_contrast(page, root: str, bound: float = AA) -> list[tuple[float, dict]]:
    """The texts under ``root`` below ``bound``, with their ratio (empty: all pass)."""
    return [
        (round(ratio, 2), item)
        for item in page_text_colours(page, root)
        if (ratio := contrast(item["fg"], item["bg"])) < bound
    ]
