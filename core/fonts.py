"""The font matplotlib draws Chinese with: Noto Sans CJK SC (Debian's fonts-noto-cjk, which the README's
commands and ``make test`` install), found by name; without it, a logged warning and boxes for Chinese."""
from __future__ import annotations

import logging
from contextlib import contextmanager
from functools import cache
from typing import Iterator

logger = logging.getLogger(__name__)

CJK_FONT = "Noto Sans CJK SC"
LATIN_FALLBACK = "DejaVu Sans"  # matplotlib's own font, always there


@cache
def chart_font_family() -> tuple[str, ...]:
    """matplotlib's ``font.family`` for charts with Chinese labels."""
    from matplotlib import font_manager

    try:
        font_manager.findfont(font_manager.FontProperties(family=CJK_FONT), fallback_to_default=False)
    except ValueError:
        logger.warning("font %r not found: Chinese chart labels will show as boxes; install it with "
                       "`apt-get install fonts-noto-cjk` (then delete matplotlib's font cache, ~/.cache/matplotlib)",
                       CJK_FONT)
        return (LATIN_FALLBACK,)
    return (CJK_FONT, LATIN_FALLBACK)


@contextmanager
def chinese_charts() -> Iterator[None]:
    """Draw (and save) a figure inside this block and its labels are set in the CJK font."""
    import matplotlib

    with matplotlib.rc_context({"font.family": list(chart_font_family()), "axes.unicode_minus": False}):
        yield
