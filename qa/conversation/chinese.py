"""Chinese follow-ups: ellipsis (那…呢), pronouns (它/他/其/该公司), questions without a subject.

Vocabulary used below, all general Chinese grammar rather than words of any one document:

- an *anchor* is what makes a question specific: a name, place or organisation by jieba's tags,
  a Latin word, a quoted term (“…”, 《…》), or a word jieba's dictionary does not know (new
  names: 海辰, 乾照). A question with an anchor has a subject of its own.
- an *entity* is an anchor extended over the words after it while the documents write them
  together (嘉庚 → 嘉庚创新实验室), so the whole name is carried or replaced.
- the *topic* of a question is what comes before its question word, less the verbs that lead
  into it ("2024年厦门全社会研发投入强度" of "…强度是多少").
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .history import Turn

PROPER = frozenset({"nr", "nrfg", "nrt", "ns", "nt", "nz", "eng"})
CONTENT = frozenset({"n", "nr", "nrfg", "nrt", "ns", "nt", "nz", "eng", "j", "vn", "b", "l", "an"})
QUESTION_WORDS = ("什么", "多少", "谁", "哪", "几", "怎", "如何", "何", "是否", "吗", "么")
LEAD_IN = frozenset(
    ["v", "vn", "vd", "p", "d", "c", "u", "uj", "ul", "uz", "ug", "ud", "uv", "y", "r"]
)
"""Tags of the words between a topic and its question word (是/提升/到了/为/在…)."""
PERSON_PRONOUNS = ("他们", "她们", "他", "她")
THING_PRONOUNS = ("它们", "它")
HEADS = (
    "公司|企业|集团|机构|银行|行|实验室|单位|项目|产品|药品|药|平台|基金|城市|地区|部门|中心|"
    "学校|大学|医院|园区|工程|产业|基地|技术|组织|团队|人|者"
)
DEMONSTRATIVE = re.compile(
    rf"(?:该|此|本)(?:{HEADS})|(?:这|那)(?:家|个|一|些|款|种|项|位|所|批)?(?:{HEADS})"
    r"|(?:这|那)(?:家|个|款|种|项|位|所|批)"
)
ORG_HEADS = frozenset(["公司", "企业", "集团", "机构", "银行", "行", "单位", "组织"])
ASKS_WHO = re.compile(r"谁|哪位|哪一位|什么人")
ASKS_WHICH = re.compile(rf"哪家|哪一家|哪个(?:{HEADS})|什么(?:{HEADS})|哪些(?:{HEADS})")
YEAR = re.compile(
    r"(?:19|20)\d{2}年?(?:上半年|下半年|前三季度|[一二三四]季度|年底|年末|底|末)?|[去今明前]年"
)
NUMBER = re.compile(r"\d+(?:\.\d+)?(?:%|[万亿千百]?[元个家项件人条名所只户])?")
QUOTED = re.compile(r"“[^”]{1,20}”|《[^》]{1,30}》|「[^」]{1,20}」|\"[^\"]{1,20}\"")
ELLIPSIS_PREFIX = re.compile(r"^(?:那么|那(?![家个些位里边种样时])|还有|另外|而|以及|至于)")
END = "?？!！。.，, "
MORE = frozenset({"", "其他", "其它", "别的", "其余"})
MAX_SUBJECTLESS_CHARS = 12
"""A turn with no anchor but longer than this is taken as a question of its own…"""
MAX_PREDICATE_CHARS = 24
"""…unless it opens with an adverb, pronoun or conjunction (其中…, 还…), up to this long (not a
verb: jieba tags 创新 in "创新平台的…" as one)."""
PREDICATE_OPENERS = frozenset({"d", "r", "c"})
RANGE_YEAR = re.compile(rf"(?:从|自|由)?(?:{YEAR.pattern})(?:到|至|—|-|~)?")


@dataclass(frozen=True)
class Token:
    word: str
    flag: str
    start: int
    end: int


@lru_cache(maxsize=4096)
def tokenize(text: str) -> tuple[Token, ...]:
    """jieba words with their tags and character offsets (cached: history turns repeat)."""
    import jieba
    import jieba.posseg as pseg

    jieba.setLogLevel(jieba.logging.WARNING)
    tokens = []
    position = 0
    for pair in pseg.cut(text):
        tokens.append(Token(pair.word, pair.flag, position, position + len(pair.word)))
        position += len(pair.word)
    return tuple(tokens)


@lru_cache(maxsize=1)
def _dictionary() -> dict[str, int]:
    import jieba

    jieba.initialize()
    return jieba.dt.FREQ


def is_question_word(token: Token) -> bool:
    return any(q in token.word for q in QUESTION_WORDS)


def is_anchor(token: Token) -> bool:
    if token.flag in PROPER:
        return True
    if len(token.word) >= 2 and re.fullmatch(r"[\u3400-\u9fff]+", token.word):
        return not _dictionary().get(token.word)
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9\-]+", token.word))


def has_subject(text: str, end: int | None = None) -> bool:
    """Whether ``text[:end]`` names something of its own (an anchor or a quoted term)."""
    cut = text if end is None else text[:end]
    return bool(QUOTED.search(cut)) or any(is_anchor(t) for t in tokenize(cut))


def entities(text: str, corpus: str) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of the names in ``text``; kind is "place" or "name".

    A name runs from an anchor over the content words after it while the documents contain
    the longer string (without documents: over nouns only). Quoted terms are names too.
    """
    found: list[tuple[int, int, str]] = [
        (m.start(), m.end(), "name") for m in QUOTED.finditer(text)
    ]
    tokens = tokenize(text)
    i = 0
    while i < len(tokens):
        token = tokens[i]
        inside = any(s <= token.start < e for s, e, _ in found)
        if inside or not is_anchor(token):
            i += 1
            continue
        start, end, j = token.start, token.end, i + 1
        while j < len(tokens) and _joins(tokens[j], text[start : tokens[j].end], corpus):
            j += 1
        while j - 1 > i and tokens[j - 1].flag.startswith("v"):
            j -= 1  # a verb may sit inside a name (嘉庚创新实验室), not end it (机构扎根)
        end = tokens[j - 1].end
        k = i - 1  # 专精 + 特新: a name can begin before its unknown word
        while k >= 0 and not any(s <= tokens[k].start < e for s, e, _ in found):
            if tokens[k].flag.startswith("v") or not _joins(
                tokens[k], text[tokens[k].start : end], corpus
            ):
                break
            start, k = tokens[k].start, k - 1
        kind = (
            "place" if token.flag == "ns" and (start, end) == (token.start, token.end) else "name"
        )
        found.append((start, end, kind))
        i = j
    return sorted(found)


def _joins(token: Token, joined: str, corpus: str) -> bool:
    """Whether ``token`` belongs to the name next to it (``joined`` is the name with it)."""
    if is_question_word(token):
        return False
    if corpus:
        return token.flag in CONTENT | {"v"} and joined in corpus
    return token.flag in {"n", "j", "nz", "nt"}


def topic(text: str, corpus: str = "") -> str:
    """What ``text`` asks about: the words before its question word, less the lead-in words.

    A verb is a lead-in (提升/达到/建设) unless the documents write it together with the word
    before it (营业 + 收入 is one term where the corpus has "营业收入").
    """
    tokens = [t for t in tokenize(text) if t.word.strip()]
    cut = next((k for k, t in enumerate(tokens) if is_question_word(t)), len(tokens))
    head = tokens[:cut]
    term = False
    while len(head) > 1:
        last, before = head[-1], head[-2]
        if last.flag.startswith("v") and len(last.word) > 1 and corpus:
            term = before.flag not in PROPER and before.word + last.word in corpus
            if term:
                break
        elif last.flag not in LEAD_IN and last.flag != "x":
            break
        head.pop()
    if not head or (head[-1].flag in LEAD_IN and not term):
        return ""
    return text[head[0].start : head[-1].end]


def _referent(previous: Turn, pronoun: str, corpus: str) -> str:
    """What a pronoun of the next turn points at: the previous answer or subject."""
    asked = previous.question
    if previous.answer and len(previous.answer) <= 40:
        if pronoun in PERSON_PRONOUNS and ASKS_WHO.search(asked):
            return previous.answer
        if pronoun not in PERSON_PRONOUNS and ASKS_WHICH.search(asked):
            return previous.answer
    names = entities(asked, corpus)
    if pronoun in PERSON_PRONOUNS:
        people = [n for n in names if n[2] == "name"]
        names = people or names
    else:
        names = [n for n in names if n[2] == "name"] or names
    if names:
        start, end, _ = names[0]
        return asked[start:end]
    return topic(asked, corpus)


def _finish(text: str, original: str) -> str:
    text = text.strip().rstrip(END)
    mark = original.strip()[-1:] if original.strip()[-1:] in "?？" else "？"
    return text + mark


def _replace_pronoun(core: str, previous: Turn, corpus: str) -> str | None:
    match = DEMONSTRATIVE.search(core)
    pronoun = ""
    if match is not None:
        start, end, pronoun = match.start(), match.end(), match.group()
    else:
        for token in tokenize(core):
            if token.word in PERSON_PRONOUNS + THING_PRONOUNS + ("其",):
                start, end, pronoun = token.start, token.end, token.word
                break
    if not pronoun or has_subject(core, start):
        return None  # no pronoun, or its antecedent is in the same question
    referent = _referent(previous, pronoun.rstrip("们"), corpus)
    if not referent:
        return None
    head = next((h for h in HEADS.split("|") if pronoun.endswith(h)), "")
    if head and not referent.endswith(head) and head not in ORG_HEADS and pronoun != "这家":
        referent += head
    after = core[end:]
    # 其核心产品 → 特宝生物的核心产品; 其获批 → 特宝生物获批
    if (
        pronoun == "其"
        and after[:1] not in {"", "的"}
        and tokenize(after)[0].flag[:1] not in "vpdu"
    ):
        referent += "的"
    return core[:start] + referent + after


def _substitute(slot: str, previous: str, corpus: str) -> str | None:
    """``previous`` with the part of the same kind as ``slot`` replaced by ``slot``."""
    if YEAR.fullmatch(slot):
        found = YEAR.search(previous)
        return (
            previous[: found.start()] + slot + previous[found.end() :] if found else slot + previous
        )
    if NUMBER.fullmatch(slot):
        found = NUMBER.search(previous)
        return previous[: found.start()] + slot + previous[found.end() :] if found else None
    owner, _, attribute = slot.partition("的")
    if attribute and has_subject(owner) and not has_subject(attribute):
        swapped = _substitute(owner, previous, corpus)  # 那乾照光电的副总裁呢
        return _substitute(attribute, swapped, corpus) if swapped else None
    if has_subject(slot):
        own = entities(slot, corpus)
        kind = (
            "place"
            if len(own) == 1 and own[0][2] == "place" and own[0][:2] == (0, len(slot))
            else "name"
        )
        names = entities(previous, corpus)
        same = [n for n in names if n[2] == kind] or names
        if not same:
            return slot + previous
        start, end, _ = same[0]
        if kind == "place":  # only the place itself: 厦门全社会… → 深圳全社会…
            end = next(t.end for t in tokenize(previous) if t.start == start)
        return _splice(previous, start, end, slot)
    # An attribute (副总裁, 出口额): replaces the words just before the question word.
    subject = topic(previous, corpus)
    if not subject:
        return None
    tokens = [t for t in tokenize(subject) if t.word.strip()]
    names = entities(subject, corpus)
    first = len(tokens)
    while first > 0 and tokens[first - 1].flag in CONTENT | {"v", "a", "m"}:
        token = tokens[first - 1]
        if any(s <= token.start < e for s, e, _ in names) or YEAR.fullmatch(token.word):
            break
        first -= 1
    if first == len(tokens):
        return None
    start, end = tokens[first].start, tokens[-1].end
    rest = tokenize(previous[end:])
    after = [t for t in rest if t.word.strip()]
    for k, token in enumerate(after[:-1]):  # 多少只 counted the old attribute: drop the 只
        if is_question_word(token) and after[k + 1].flag == "q":
            cut = end + after[k + 1].start
            previous = previous[:cut] + previous[cut + len(after[k + 1].word) :]
            break
    return _splice(previous, start, end, slot)


def _splice(text: str, start: int, end: int, slot: str) -> str:
    """``text[start:end]`` replaced by ``slot``, without repeating words the two share at the
    seam ("“拉力”模式" for "“推力”" before "模式" gives "“拉力”模式", not "“拉力”模式模式")."""
    for k in range(1, len(slot)):
        tail = slot[k:]
        if text[end : end + len(tail)] == tail:
            return text[:start] + slot + text[end + len(tail) :]
    return text[:start] + slot + text[end:]


def rebuild(question: str, previous: Turn, corpus: str) -> tuple[str, str] | None:
    """The self-contained question ``question`` stands for after ``previous``, and the rule.

    ``None`` when the question stands alone (or when no rule can rebuild it).
    """
    core = question.strip().rstrip(END)
    last = previous.question.strip().rstrip(END)
    if not core or not last:
        return None
    # Ellipsis: 那2020年呢 / 还有乾照光电呢 / 那副总裁呢 — a slot without a question word.
    prefixed = ELLIPSIS_PREFIX.match(core)
    body = core[prefixed.end() :] if prefixed else core
    if body.endswith("呢"):
        body = body[:-1].strip().removesuffix("的")
    if body != core or prefixed:
        slot = body.strip(" ，,、")
        if slot in MORE:
            return _finish(last, question), "repeat"
        no_question_word = not any(is_question_word(t) for t in tokenize(slot))
        if no_question_word and DEMONSTRATIVE.search(slot) is None and len(slot) <= 20:
            rebuilt = _substitute(slot, last, corpus)
            return (_finish(rebuilt, question), "slot") if rebuilt else None
    core = body if prefixed or body != core else core
    # Pronouns and demonstratives with no antecedent in the question itself.
    replaced = _replace_pronoun(core, previous, corpus)
    if replaced is not None:
        return _finish(replaced, question), "pronoun"
    # No subject of its own (同比增长多少 / 项目总投资多少): carry the previous topic.
    length = len(re.findall(r"[\u3400-\u9fff]", core))
    opener = tokenize(core)[0].flag in PREDICATE_OPENERS and not is_question_word(tokenize(core)[0])
    if length > (MAX_PREDICATE_CHARS if opener else MAX_SUBJECTLESS_CHARS) or has_subject(core):
        return None
    carried = topic(last, corpus)
    if not carried:
        names = entities(last, corpus)
        if not names:
            return None
        carried = last[names[0][0] : names[0][1]]
    if YEAR.search(core):  # 2014年是多少？ after 从2014年到2024年…: the turn's own year counts
        carried = RANGE_YEAR.sub("", carried)
    first = next((t for t in tokenize(core) if t.word.strip()), None)
    if first is not None:  # 那营业收入是多少？ after …营业收入同比增长多少？: no repeated words
        repeated = carried.find(first.word) if len(first.word) > 1 else -1
        if repeated > 0:
            carried = carried[:repeated]
    if not carried.strip():
        return None
    first = tokenize(core)[0]
    joiner = "的" if first.flag.startswith("n") and not carried.endswith("的") else ""
    return _finish(carried + joiner + core, question), "topic"
