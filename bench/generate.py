"""Synthesise many reports from the real one, for the scale benchmark (bench/scale.py).

Each report is the Dalian 2023 report with another prefecture-level city (and
its province), another year (2015-2025; the years it mentions shift with it),
every other Arabic number scaled by a random factor (integers stay integers,
percentages stay at most 100 %), and, outside headings, 《titles》 and “quotes”,
common verbs swapped for a synonym of the same length (推动/推进, 完善/健全…)
and some sentences opened with a connective (同时, 此外, …), so that passages
without a number are not copies of each other either. Headings keep their words, so the parser finds the same
一、/(一) structure. Report ``i`` depends only on (seed, i), so a corpus of 1,000
is the first 1,000 of a corpus of 10,000.

``variation_key`` undoes the variation (cities, provinces, numbers, synonyms
folded to placeholders): a generated passage and the real passage it came from
share a key, which is how the benchmark's derived embedder finds the real vector.

Run: .venv/bin/python bench/generate.py OUT_DIR --reports 1000 --seed 0
"""
from __future__ import annotations

import json
import math
import random
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BASE_REPORT = ROOT / "data" / "raw" / "dalian-2023-law-based-government-report.txt"
BASE_CITY, BASE_PROVINCE, BASE_YEAR = "大连", "辽宁", 2023
YEARS = range(2015, 2026)

# Prefecture-level cities (not province-level municipalities) with their provinces.
CITIES: tuple[tuple[str, str], ...] = (
    ("沈阳", "辽宁"), ("鞍山", "辽宁"), ("抚顺", "辽宁"), ("本溪", "辽宁"), ("丹东", "辽宁"),
    ("锦州", "辽宁"), ("营口", "辽宁"), ("长春", "吉林"), ("哈尔滨", "黑龙江"), ("齐齐哈尔", "黑龙江"),
    ("大庆", "黑龙江"), ("石家庄", "河北"), ("唐山", "河北"), ("保定", "河北"), ("太原", "山西"),
    ("大同", "山西"), ("呼和浩特", "内蒙古"), ("包头", "内蒙古"), ("济南", "山东"), ("青岛", "山东"),
    ("烟台", "山东"), ("潍坊", "山东"), ("南京", "江苏"), ("苏州", "江苏"), ("无锡", "江苏"),
    ("徐州", "江苏"), ("杭州", "浙江"), ("宁波", "浙江"), ("温州", "浙江"), ("合肥", "安徽"),
    ("芜湖", "安徽"), ("福州", "福建"), ("厦门", "福建"), ("泉州", "福建"), ("南昌", "江西"),
    ("赣州", "江西"), ("郑州", "河南"), ("洛阳", "河南"), ("武汉", "湖北"), ("宜昌", "湖北"),
    ("长沙", "湖南"), ("岳阳", "湖南"), ("广州", "广东"), ("深圳", "广东"), ("佛山", "广东"),
    ("南宁", "广西"), ("桂林", "广西"), ("成都", "四川"), ("绵阳", "四川"), ("贵阳", "贵州"),
    ("昆明", "云南"), ("西安", "陕西"), ("兰州", "甘肃"), ("银川", "宁夏"),
)

# Same-length synonyms, so passage lengths (and chunk boundaries) barely move.
SYNONYMS: tuple[tuple[str, ...], ...] = (
    ("推动", "推进"), ("完善", "健全"), ("加强", "强化"), ("提高", "提升"), ("开展", "实施"), ("持续", "不断"),
    ("建立", "构建"), ("深化", "深入"), ("印发", "出台"), ("有效", "切实"), ("组织", "统筹"), ("优化", "改善"),
    ("推出", "上线"), ("获评", "荣获"), ("我市", "本市"),
)
SYNONYM_RATE = 0.5
CONNECTIVES = ("同时,", "此外,", "另外,", "与此同时,", "在此基础上,")
CONNECTIVE_RATE = 0.25

_NUMBER = re.compile(r"\d+(?:\.\d+)?%?")
_YEAR_RANGE = re.compile(r"《[^》]*\d{4}[—–-]\d{4}[^》]*》")  # 《纲要(2021—2025年)》: a national plan's span, kept
# Text a synonym swap must not touch: 《titles》 and “quotes”.
_PROTECTED = re.compile(r"《[^》]*》|“[^”]*”")
_HEADING = re.compile(r"^(?:[一二三四五六七八九十]+、|[(（][一二三四五六七八九十]+[)）])")


@dataclass(frozen=True)
class GeneratedReport:
    name: str  # file name, e.g. gen-00042-2019.txt
    text: str
    city: str
    province: str
    year: int

    @property
    def meta(self) -> dict:
        return {"title": f"{self.city}市{self.year}年法治政府建设情况报告", "issuer": f"{self.city}市人民政府",
                "year": self.year, "url": f"https://example.invalid/reportqa-bench/{Path(self.name).stem}.html"}


def _scale_number(token: str, factor: float, rng: random.Random, year_shift: int) -> str:
    percent = token.endswith("%")
    digits = token.rstrip("%")
    if not percent and "." not in digits and len(digits) == 4 and 2000 <= int(digits) <= 2030:
        return str(int(digits) + year_shift)
    value = float(digits) * factor * rng.uniform(0.8, 1.25)
    if percent:
        value = min(value, 100.0)
    if "." in digits:
        places = len(digits.split(".")[1])
        return f"{value:.{places}f}" + ("%" if percent else "")
    return str(max(1, round(value))) + ("%" if percent else "")


def _vary_numbers(text: str, factor: float, rng: random.Random, year_shift: int) -> str:
    out, pos = [], 0
    for kept in _YEAR_RANGE.finditer(text):
        out.append(_NUMBER.sub(lambda m: _scale_number(m.group(), factor, rng, year_shift), text[pos:kept.start()]))
        out.append(kept.group())
        pos = kept.end()
    out.append(_NUMBER.sub(lambda m: _scale_number(m.group(), factor, rng, year_shift), text[pos:]))
    return "".join(out)


_SYNONYM_OF = {word: group for group in SYNONYMS for word in group}
_SYNONYM_RE = re.compile("|".join(sorted(_SYNONYM_OF, key=len, reverse=True)))
_SENTENCE_START = re.compile(r"。(?=[^\s《(（])")  # a sentence end followed by another sentence


def _reword(text: str, rng: random.Random) -> str:
    """Swap synonyms and open some sentences with a connective, outside 《titles》 and “quotes”."""
    def swap(match: re.Match) -> str:
        word = match.group()
        if rng.random() >= SYNONYM_RATE:
            return word
        return rng.choice([w for w in _SYNONYM_OF[word] if w != word])

    def connect(match: re.Match) -> str:
        return match.group() + (rng.choice(CONNECTIVES) if rng.random() < CONNECTIVE_RATE else "")

    out, pos = [], 0
    for kept in _PROTECTED.finditer(text):
        out.append(_SENTENCE_START.sub(connect, _SYNONYM_RE.sub(swap, text[pos:kept.start()])))
        out.append(kept.group())
        pos = kept.end()
    out.append(_SENTENCE_START.sub(connect, _SYNONYM_RE.sub(swap, text[pos:])))
    return "".join(out)


def _vary_line(line: str, rng: random.Random) -> str:
    """Swap synonyms in a body line, leaving a heading (and an inline heading's first sentence) alone."""
    if not _HEADING.match(line):
        return _reword(line, rng)
    stop = re.search(r"[。！？；]", line)
    if stop is None:
        return line
    return line[: stop.end()] + _reword(line[stop.end():], rng)


def generate_report(index: int, seed: int = 0, base_text: str | None = None) -> GeneratedReport:
    """Report number ``index`` of the corpus for ``seed``: the same every time."""
    text = base_text if base_text is not None else BASE_REPORT.read_text(encoding="utf-8")
    rng = random.Random(f"{seed}:{index}")
    city, province = rng.choice(CITIES)
    year = rng.choice(YEARS)
    factor = math.exp(rng.uniform(math.log(0.5), math.log(2.0)))
    lines = text.split("\n")
    # The first line is the title, the last the 编辑: metadata line: only city and year change there.
    body = [_vary_line(line, rng) if 0 < i < len(lines) - 1 else line for i, line in enumerate(lines)]
    text = _vary_numbers("\n".join(body), factor, rng, year - BASE_YEAR)
    text = text.replace(BASE_CITY, city).replace(BASE_PROVINCE, province)
    return GeneratedReport(f"gen-{index:05d}-{year}.txt", text, city, province, year)


def write_corpus(out_dir: Path, reports: int, seed: int = 0, start: int = 0) -> list[Path]:
    """Write reports ``start`` … ``start+reports-1`` with their sidecars; return the report paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    base_text = BASE_REPORT.read_text(encoding="utf-8")
    paths = []
    for index in range(start, start + reports):
        report = generate_report(index, seed, base_text)
        path = out_dir / report.name
        path.write_text(report.text, encoding="utf-8")
        (out_dir / f"{path.stem}.meta.json").write_text(json.dumps(report.meta, ensure_ascii=False), encoding="utf-8")
        paths.append(path)
    return paths


_PLACES = sorted({c for c, _ in CITIES} | {p for _, p in CITIES} | {BASE_CITY, BASE_PROVINCE}, key=len, reverse=True)
_KEY_RE = re.compile(r"\d+(?:\.\d+)?%?|" + "|".join(
    sorted(CONNECTIVES, key=len, reverse=True) + _PLACES + sorted(_SYNONYM_OF, key=len, reverse=True)))


def _key_token(match: re.Match) -> str:
    token = match.group()
    if token[0].isdigit():
        return "#"
    if token in CONNECTIVES:
        return ""
    group = _SYNONYM_OF.get(token)
    return group[0] if group else "@"


def variation_key(text: str) -> str:
    """The text with what the generator varies folded away: a variant and its source share a key."""
    return _KEY_RE.sub(_key_token, text)


def main(argv: list[str] | None = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--reports", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    paths = write_corpus(args.out_dir, args.reports, args.seed)
    print(f"wrote {len(paths)} reports (+ .meta.json sidecars) to {args.out_dir}")


if __name__ == "__main__":
    sys.exit(main())
