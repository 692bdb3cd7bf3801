"""Detectors: prompt injection / jailbreak, PII, secrets, toxic or harmful text (English and Chinese).

Each detector maps a text to findings with a score in [0, 1]. PII and secrets findings carry the
span to redact (offsets in the original text); injection and toxicity findings describe the text
as a whole. Rules run on normalised text (see `normalize`), so zero-width, full-width and
look-alike obfuscation does not hide a trigger phrase.
"""

# Regular expressions read best on one line each; the tables below are exempt from the line limit.
# ruff: noqa: E501
from __future__ import annotations

import base64
import binascii
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from service.safety.normalize import ZERO_WIDTH, has_invisible, normalize


@dataclass(frozen=True)
class Finding:
    detector: str  # injection | pii | secrets | toxicity
    category: str  # e.g. prompt_injection, jailbreak, prompt_extraction, EMAIL, AWS_KEY, harmful
    score: float
    start: int | None = None  # span in the original text, for redaction
    end: int | None = None
    rule: str = ""

    @property
    def label(self) -> str:
        """The redaction tag: `[REDACTED:<TYPE>]`."""
        return f"[REDACTED:{self.category}]"


Detector = Callable[[str], list[Finding]]

# ---------------------------------------------------------------------------------------------
# Prompt injection and jailbreak
# ---------------------------------------------------------------------------------------------

_OBJ_EN = (
    r"(?:instructions?|instructons|rules|prompts?|directions|directives|guidelines|guardrails|"
    r"constraints|commands|orders|system\s+(?:prompt|message))"
)
_PRE_EN = r"(?:(?:all|any|every|the|your|my|these|those|of|previous|prior|above|earlier|preceding|former|original|initial|old|existing|system|safety|developer)\s+){0,4}"
_IGNORE_EN = r"(?:ignore|disregard|forget|bypass|abandon|neglect|discard|stop\s+following|do\s+not\s+follow|don'?t\s+follow)"
# Verbs with everyday operations meanings ("override the default limits", "skip the checks"): weaker.
_IGNORE_WEAK_EN = r"(?:override|overrule|skip|drop)"

_INJECTION_RULES: list[tuple[str, str, float, re.Pattern[str]]] = [
    # (category, rule name, score, pattern on normalised text)
    ("prompt_injection", "override_en", 0.95, re.compile(rf"\b{_IGNORE_EN}\s+{_PRE_EN}{_OBJ_EN}")),
    ("prompt_injection", "override_weak_en", 0.75, re.compile(rf"\b{_IGNORE_WEAK_EN}\s+{_PRE_EN}{_OBJ_EN}")),
    ("prompt_injection", "override_weak_then_en", 0.9,
     re.compile(rf"\b{_IGNORE_WEAK_EN}\s+{_PRE_EN}{_OBJ_EN}\s*(?:and|,|;|then|\.)\s*(?:\w+\s+){{0,2}}(?:say|reply|answer|print|output|tell|list|send|claim|write|respond|reveal|show)\b")),
    ("prompt_injection", "override_what_en", 0.9,
     re.compile(r"\b(?:ignore|disregard|forget)\s+(?:everything|all|anything)\s+(?:above|before|previously|you\s+(?:were|have\s+been)\s+told)")),
    ("prompt_injection", "new_instructions_en", 0.85,
     re.compile(r"\b(?:new|updated|real|actual|true)\s+(?:instructions?|system\s+prompt|rules)\s*(?:are|:|follow)")),
    ("prompt_injection", "fake_system_en", 0.8,
     re.compile(r"(?:^|\n)\s*(?:#{1,3}\s*)?(?:system|assistant)\s*(?:override|message|prompt)?\s*:\s*(?:you|ignore|from now)|<\|?(?:im_start|system)\|?>|\[/?inst\]")),
    ("prompt_injection", "from_now_on_en", 0.75,
     re.compile(r"\bfrom\s+now\s+on,?\s+(?:you|your|respond|answer|only|always|never)")),
    ("prompt_injection", "instead_en", 0.7,
     re.compile(r"\binstead,?\s+(?:you\s+(?:must|should|will)|respond|reply|answer|say|output|tell)\b.{0,60}\b(?:only|exactly|user|password|secret|link|http)")),
    ("prompt_injection", "to_the_model_en", 0.85,
     re.compile(r"\b(?:ai|assistant|llm|language\s+model|chatbot|model)s?\s*(?:reading|processing|summari[sz]ing)\s+(?:this|these)\b.{0,80}\b(?:must|should|will|ignore|tell|say|respond|reply)")),
    ("jailbreak", "dan_en", 0.95,
     re.compile(r"\bdo\s+anything\s+now\b|\byou\s+are\s+(?:now\s+)?dan\b|\bdan\s+mode\b|\bjailbreak\s+(?:mode|enabled|activated|on)\b|\byou\s+are\s+(?:now\s+)?jailbroken\b|\bdeveloper\s+mode\s+(?:enabled|on|activated)|\benable\s+developer\s+mode")),
    ("jailbreak", "unrestricted_en", 0.85,
     re.compile(r"\b(?:without|no|free\s+of|free\s+from|ignore\s+(?:all\s+)?(?:your\s+)?)\s*(?:any\s+)?(?:restrictions|limitations|filters|censorship|content\s+polic(?:y|ies)|ethical\s+guidelines|safety\s+guidelines|moral\s+constraints)\b")),
    ("jailbreak", "persona_en", 0.8,
     re.compile(r"\b(?:pretend|imagine|act|behave|roleplay|role-play)\s+(?:that\s+)?(?:you\s+are|you're|to\s+be|as)\s+(?:an?\s+)?(?:\w+\s+){0,2}(?:ai|assistant|model|bot|character)?\s*(?:with(?:out)?\s+(?:no|any)\s+|that\s+(?:has\s+no|can|ignores|never)|who\s+(?:has\s+no|can|ignores|never)|unrestricted|unfiltered|uncensored|evil|rogue)")),
    ("jailbreak", "you_are_now_en", 0.8,
     re.compile(r"\byou\s+are\s+(?:now|no\s+longer)\s+(?:an?\s+)?(?:unrestricted|unfiltered|uncensored|evil|free|bound|an?\s+ai\s+(?:without|with\s+no)|my\s+(?:slave|servant)|(?:a|an)\s+different)")),
    ("prompt_extraction", "reveal_prompt_en", 0.9,
     re.compile(r"\b(?:reveal|show|print|repeat|output|display|leak|dump|tell\s+me|give\s+me|write\s+out|recite|disclose|spell\s+out|what\s+(?:is|are|were))\s+(?:me\s+)?(?:\w+\s+){0,2}(?:your|the)\s+(?:\w+\s+)?(?:system\s+(?:prompt|message|instructions?)|initial\s+(?:prompt|instructions?)|hidden\s+(?:prompt|instructions?)|original\s+(?:prompt|instructions?)|pre-?prompt|instructions\s+you\s+were\s+given)")),
    ("prompt_extraction", "repeat_above_en", 0.85,
     re.compile(r"\b(?:repeat|print|output|copy)\s+(?:everything|all(?:\s+the)?\s+text|the\s+text|the\s+words)\s+(?:above|before|preceding|verbatim)")),
    # Chinese (normalised: full-width punctuation is ASCII after NFKC)
    ("prompt_injection", "override_zh", 0.95,
     re.compile(r"(?:忽略|忽视|无视|忘记|忘掉|不要理会|别管|跳过|抛开|绕过|不再遵守|不要遵守|停止遵守)(?:掉)?(?:你|之前|以前|此前|先前|上面|上述|以上|前面|原来|原有|所有|全部|一切|系统|的|和|中|里|给你|收到|设定|被)*(?:指令|指示|提示词?|规则|说明|要求|设定|命令|约束|限制)")),
    ("prompt_injection", "new_instructions_zh", 0.85, re.compile(r"(?:新的?|真正的|更新后?的)(?:指令|指示|系统提示|规则)(?:是|如下|:)")),
    ("prompt_injection", "from_now_on_zh", 0.75, re.compile(r"从现在(?:开始|起)[,\s]*(?:你|只|请|必须|一律)")),
    ("jailbreak", "persona_zh", 0.85,
     re.compile(r"(?:你现在是|你将扮演|扮演|假装你是|假设你是|你不再是)[^。.!?]{0,20}(?:没有|不受|无|任何|不被|不需要遵守|邪恶|不受限|无限制|dan)|开发者模式|越狱模式|你已越狱")),
    ("jailbreak", "unrestricted_zh", 0.85, re.compile(r"(?:不受|没有|无视|不用遵守|解除)(?:任何)?(?:限制|约束|审查|过滤|道德|安全(?:策略|规则|准则))")),
    ("prompt_extraction", "reveal_prompt_zh", 0.9,
     re.compile(r"(?:显示|输出|泄露|告诉我|打印|重复|给我看|说出|透露|展示|复述)(?:一下|出)?(?:你的|你|给你的|你收到的)?(?:全部|完整的?|原始的?|隐藏的?|初始的?)*(?:系统提示词?|系统消息|系统指令|初始指令|提示词|隐藏指令|原始指令)|(?:系统提示词?|系统消息|初始指令|隐藏指令|原始指令)[^。.!?]{0,12}(?:复述|输出|显示|打印|告诉我|泄露|发给我|原样)")),
    # Other European languages, where cheap
    ("prompt_injection", "override_de", 0.9,
     re.compile(r"\b(?:ignoriere|vergiss|missachte)\s+(?:\w+\s+){0,3}(?:anweisungen|instruktionen|regeln|vorgaben)")),
    ("prompt_injection", "override_fr", 0.9,
     re.compile(r"\b(?:ignore[zr]?|oublie[zr]?)\s+(?:toutes\s+)?(?:les|vos|tes|ces)\s+(?:\w+\s+){0,2}(?:instructions|consignes|regles|règles)")),
    ("prompt_injection", "override_es", 0.9,
     re.compile(r"\b(?:ignora|olvida|ignore|olvide)\s+(?:\w+\s+){0,3}(?:instrucciones|reglas|indicaciones)")),
    ("prompt_injection", "override_it_pt", 0.9,
     re.compile(r"\b(?:ignora|dimentica|esqueça|esqueca|ignore)\s+(?:\w+\s+){0,3}(?:istruzioni|regole|instruções|instrucoes|regras)")),
]  # fmt: skip

_B64 = re.compile(r"(?<![A-Za-z0-9+/=])[A-Za-z0-9+/]{24,}={0,2}(?![A-Za-z0-9+/=])")


def _decoded_payloads(text: str) -> Iterable[str]:
    """Base64 runs that decode to readable text (an instruction smuggled past keyword rules)."""
    for m in _B64.finditer(text):
        s = m.group(0)
        try:
            raw = base64.b64decode(s + "=" * (-len(s) % 4), validate=False)
            decoded = raw.decode("utf-8")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            continue
        printable = sum(1 for c in decoded if c.isprintable() or c.isspace())
        if decoded and printable / len(decoded) > 0.95:
            yield decoded


def decoded_runs(norm: str, original: str) -> str:
    """`norm` (normalised `original`) with its base64 runs replaced by what they decode to."""
    decoded = [normalize(d) for d in _decoded_payloads(original)]
    if not decoded:
        return norm
    return (_B64.sub(" ", norm) + " " + " ".join(decoded)).strip()


# A trigger phrase inside quotation marks is usually *mentioned* ("what is an 'ignore all previous
# instructions' attack?", a runbook quoting one), not used: such a rule hit alone scores QUOTED_SCORE
# (below the flag thresholds), and the semantic stage, which reads the whole sentence, decides.
QUOTED_SCORE = 0.6
_QUOTED = re.compile(
    r"\"[^\"\n]{1,300}\"|“[^”\n]{1,300}”|„[^“”\n]{1,300}[“”]|«[^»\n]{1,300}»|‘[^’\n]{1,300}’|"
    r"「[^」\n]{1,300}」|『[^』\n]{1,300}』|(?<![^\W\d_])'[^'\n]{1,300}'(?![^\W\d_])"
)


def _quoted_spans(text: str) -> list[tuple[int, int]]:
    return [m.span() for m in _QUOTED.finditer(text)]


def _inside(span: tuple[int, int], spans: list[tuple[int, int]]) -> bool:
    return any(s <= span[0] and span[1] <= e for s, e in spans)


def injection_rules(text: str) -> list[Finding]:
    """Rule findings for instruction override, persona/DAN, prompt extraction, encoded payloads."""
    norm = normalize(text)
    norm_ws = re.sub(r"\s+", " ", norm)
    # "i g n o r e": letters spaced out to dodge word rules
    norm_ws = re.sub(r"(?<!\w)((?:\w ){3,}\w)(?!\w)", lambda m: m.group(1).replace(" ", ""), norm_ws)
    quotes = _quoted_spans(norm_ws)
    out: list[Finding] = []
    quoted: list[Finding] = []
    for category, rule, score, pattern in _INJECTION_RULES:
        matches = [m.span() for m in pattern.finditer(norm_ws)]
        if rule == "fake_system_en" and not matches and pattern.search(norm):
            out.append(Finding("injection", category, score, rule=rule))
        elif matches and all(_inside(m, quotes) for m in matches):
            quoted.append(Finding("injection", category, min(score, QUOTED_SCORE), rule=rule + "_quoted"))
        elif matches:
            out.append(Finding("injection", category, score, rule=rule))
    for decoded in _decoded_payloads(text):
        inner = injection_rules(decoded) if len(decoded) < 4000 else []
        if inner:
            best = max(inner, key=lambda f: f.score)
            out.append(Finding("injection", best.category, max(best.score, 0.9), rule="base64_" + best.rule))
    if has_invisible(text) and out:
        out.append(Finding("injection", "obfuscation", 0.95, rule="invisible_characters"))
    elif has_invisible(text) and re.search(
        r"[A-Za-z\u4e00-\u9fff][\u200b\u200c\u200d\u2060\ufeff][A-Za-z\u4e00-\u9fff]", text
    ):
        out.append(Finding("injection", "obfuscation", 0.5, rule="invisible_inside_word"))
    if text != norm and norm != text.lower() and out:
        # look-alike or full-width letters that only matched after normalisation
        visible = re.sub(r"\s+", " ", ZERO_WIDTH.sub("", text).lower())
        if not any(p.search(visible) for _c, _r, _s, p in _INJECTION_RULES):
            out.append(Finding("injection", "obfuscation", 0.95, rule="homoglyphs"))
    return out + quoted


# ---------------------------------------------------------------------------------------------
# PII
# ---------------------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])"
)
_CN_MOBILE = re.compile(r"(?<![\d.])(?:\+?86[- ]?)?1[3-9]\d(?:[- ]?\d{4}){2}(?![\d.])")
_INTL_PHONE = re.compile(r"(?<![\w+])\+(?:[1-9]\d{0,2})[ .-]?\(?\d{1,4}\)?(?:[ .-]?\d{2,4}){2,4}(?![\w])")
_NA_PHONE = re.compile(r"(?<![\w.])\(?\d{3}\)?[ .-]\d{3}[ .-]\d{4}(?![\w.])")
_CN_ID = re.compile(
    r"(?<![\dA-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![\dA-Za-z])"
)
_CARD = re.compile(r"(?<![\d.-])(?:\d[ -]?){12,18}\d(?![\d.-])")
_IBAN = re.compile(r"(?<![A-Za-z0-9])[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?(?![A-Za-z0-9])")
_IPV4 = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(?![\d.])"
)
_CRED_WORDS = re.compile(
    r"password|passwd|pwd|passphrase|secret|token|api[_-]?key|credential|login|username|user\s*[:=]|"
    r"ssh\s+\w+@|root@|密码|口令|账号|凭据|令牌", re.IGNORECASE,
)  # fmt: skip

_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"
_IBAN_LENGTHS = {
    "AD": 24, "AT": 20, "BE": 16, "BG": 22, "CH": 21, "CY": 28, "CZ": 24, "DE": 22, "DK": 18, "EE": 20,
    "ES": 24, "FI": 18, "FR": 27, "GB": 22, "GR": 27, "HR": 21, "HU": 28, "IE": 22, "IS": 26, "IT": 27,
    "LI": 21, "LT": 20, "LU": 20, "LV": 21, "MC": 27, "MT": 31, "NL": 18, "NO": 15, "PL": 28, "PT": 25,
    "RO": 24, "SE": 24, "SI": 19, "SK": 24, "SM": 27, "TR": 26, "AE": 23, "SA": 24, "IL": 23, "QA": 29,
}  # fmt: skip


def cn_id_valid(s: str) -> bool:
    """GB 11643 checksum of an 18-character Chinese resident ID."""
    if len(s) != 18 or not s[:17].isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(s[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == s[17].upper()


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 1:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def iban_valid(s: str) -> bool:
    s = s.replace(" ", "").upper()
    if _IBAN_LENGTHS.get(s[:2]) != len(s):
        return False
    rearranged = s[4:] + s[:4]
    num = "".join(str(int(c, 36)) for c in rearranged)
    return int(num) % 97 == 1


def _card_ok(raw: str) -> bool:
    digits = re.sub(r"[ -]", "", raw)
    if not 13 <= len(digits) <= 19 or digits[0] not in "23456" or len(set(digits)) < 2:
        return False
    return luhn_valid(digits)


def pii(text: str) -> list[Finding]:
    out: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(category: str, m: re.Match[str], score: float, rule: str) -> None:
        s, e = m.span()
        if any(s < te and ts < e for ts, te in taken):
            return
        taken.append((s, e))
        out.append(Finding("pii", category, score, s, e, rule))

    for m in _EMAIL.finditer(text):
        add("EMAIL", m, 0.95, "email")
    for m in _CN_ID.finditer(text):
        if cn_id_valid(m.group(0)):
            add("CN_ID", m, 0.99, "cn_resident_id")
    for m in _IBAN.finditer(text):
        if iban_valid(m.group(0)):
            add("IBAN", m, 0.99, "iban")
    for m in _CARD.finditer(text):
        if _card_ok(m.group(0)):
            add("CARD", m, 0.95, "luhn")
    for m in _CN_MOBILE.finditer(text):
        add("PHONE", m, 0.9, "cn_mobile")
    for m in _INTL_PHONE.finditer(text):
        if sum(c.isdigit() for c in m.group(0)) >= 8:
            add("PHONE", m, 0.8, "intl_phone")
    for m in _NA_PHONE.finditer(text):
        add("PHONE", m, 0.7, "na_phone")
    for m in _IPV4.finditer(text):
        window = text[max(0, m.start() - 60) : m.end() + 60]
        if _CRED_WORDS.search(window):
            add("IP_ADDRESS", m, 0.8, "ip_near_credentials")
    return out


# ---------------------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------------------

_SECRET_TOKENS: list[tuple[str, float, re.Pattern[str]]] = [
    ("AWS_KEY", 0.99, re.compile(r"(?<![A-Z0-9])(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA)[0-9A-Z]{16}(?![A-Z0-9])")),
    ("GITHUB_TOKEN", 0.99, re.compile(r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{40,255})")),
    ("SLACK_TOKEN", 0.99, re.compile(r"(?<![A-Za-z0-9])xox[abposre]-[A-Za-z0-9-]{10,}")),
    ("API_KEY", 0.95, re.compile(r"(?<![A-Za-z0-9_-])sk-(?:proj-|ant-)?[A-Za-z0-9_-]{20,}")),
    ("API_KEY", 0.95, re.compile(r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}")),
    ("API_KEY", 0.95, re.compile(r"(?<![A-Za-z0-9_-])(?:glpat|gldt)-[A-Za-z0-9_-]{20,}")),
    ("API_KEY", 0.95, re.compile(r"(?<![A-Za-z0-9_])(?:sk|rk|pk)_live_[A-Za-z0-9]{16,}")),
    ("JWT", 0.95, re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")),
    ("PRIVATE_KEY", 0.99, re.compile(r"-----BEGIN (?:[A-Z]+ )?PRIVATE KEY-----[\s\S]*?(?:-----END (?:[A-Z]+ )?PRIVATE KEY-----|\Z)")),
    ("BEARER_TOKEN", 0.9, re.compile(r"(?<=[Bb]earer )[A-Za-z0-9._~+/-]{20,}=*")),
    ("URL_CREDENTIALS", 0.9, re.compile(r"(?<=://)[^\s:/@]{1,64}:[^\s@/]{3,128}(?=@)")),
]  # fmt: skip

# key=value, key: value, "key": "value"; the value is what gets redacted.
_PASSWORD_KV = re.compile(
    r"(?:password|passwd|passwort|pwd|passphrase|mot\s+de\s+passe|contraseña|密码|口令)[\"']?\s*(?:=|:|：|是|为)\s*[\"']?(?P<v>[^\s\"',;，。]{3,128})",
    re.IGNORECASE,
)  # fmt: skip
_SECRET_KV = re.compile(
    r"(?:api[_-]?key|apikey|secret(?:[_-]?key)?|access[_-]?key(?:[_-]?id)?|auth[_-]?token|access[_-]?token|"
    r"refresh[_-]?token|client[_-]?secret|private[_-]?key|token|密钥|令牌)[\"']?\s*(?:=|:|：)\s*[\"']?(?P<v>[A-Za-z0-9/+_.~=-]{12,256})",
    re.IGNORECASE,
)  # fmt: skip
_PLACEHOLDER = re.compile(
    r"^(?:\$|<|\{|%|\*|x{3,}|\.{3}|…|<redacted|\[redacted|redacted|none|null|nil|true|false|empty|required|"
    r"your[_-]|changeme$|example|placeholder|secret$|password$|\w+_(?:password|secret|token|key)$|env\(|os\.environ|"
    r"\w*\(\)$|ref\b|file:|vault:|secretkeyref|valuefrom|from_env|\*\*\*)",
    re.IGNORECASE,
)  # fmt: skip


def shannon_entropy(s: str) -> float:
    if not s:
        return 0.0
    counts = {c: s.count(c) for c in set(s)}
    return -sum(n / len(s) * math.log2(n / len(s)) for n in counts.values())


def secrets(text: str) -> list[Finding]:
    out: list[Finding] = []
    taken: list[tuple[int, int]] = []

    def add(category: str, s: int, e: int, score: float, rule: str) -> None:
        if any(s < te and ts < e for ts, te in taken):
            return
        taken.append((s, e))
        out.append(Finding("secrets", category, score, s, e, rule))

    for category, score, pattern in _SECRET_TOKENS:
        for m in pattern.finditer(text):
            add(category, m.start(), m.end(), score, category.lower())
    for m in _PASSWORD_KV.finditer(text):
        v = m.group("v")
        if _PLACEHOLDER.match(v) or v.startswith("[REDACTED"):
            continue
        add("PASSWORD", m.start("v"), m.end("v"), 0.9, "password_kv")
    for m in _SECRET_KV.finditer(text):
        v = m.group("v")
        if _PLACEHOLDER.match(v):
            continue
        has_digit = any(c.isdigit() for c in v)
        has_alpha = any(c.isalpha() for c in v)
        if has_digit and has_alpha and shannon_entropy(v) >= 3.3 and not re.fullmatch(r"[\w.-]+\.\w{2,4}", v):
            add("SECRET", m.start("v"), m.end("v"), 0.85, "high_entropy_kv")
    return out


# ---------------------------------------------------------------------------------------------
# Toxic or harmful content
# ---------------------------------------------------------------------------------------------

_TOXIC_RULES: list[tuple[str, float, re.Pattern[str]]] = [
    ("violence_threat", 0.9, re.compile(
        r"\b(?:i\s*(?:will|'ll|am\s+going\s+to|gonna)|we\s*(?:will|'ll))\s+(?:kill|murder|hurt|stab|shoot|beat\s+up)\s+(?:you|him|her|them|your)\b"
        r"|\b(?:go\s+)?kill\s+yourself\b|\bkys\b")),
    ("harmful_instructions", 0.9, re.compile(
        r"\b(?:how\s+to|steps\s+to|instructions\s+(?:to|for)|guide\s+to|recipe\s+for|here'?s\s+how\s+to)\s+(?:make|build|assemble|create|synthesi[sz]e|cook|produce)\s+(?:a\s+|an\s+|some\s+)?"
        r"(?:pipe\s+bomb|bomb|explosives?|nerve\s+agent|sarin|ricin|meth(?:amphetamine)?|chemical\s+weapon|bioweapon|untraceable\s+gun|napalm)")),
    ("harmful_instructions", 0.85, re.compile(
        r"\b(?:mix|combine)\s+(?:\w+\s+){0,3}(?:bleach\s+and\s+ammonia|ammonium\s+nitrate\s+and\s+(?:fuel|diesel))")),
    ("self_harm", 0.9, re.compile(r"\b(?:best|easiest|painless)\s+(?:way|ways|method)s?\s+to\s+(?:kill\s+myself|commit\s+suicide|end\s+my\s+life)")),
    ("insult", 0.8, re.compile(
        r"\b(?:you(?:'re|\s+are)\s+(?:a|an|such\s+a)?\s*(?:fucking\s+)?(?:idiot|moron|retard|stupid\s+bitch|piece\s+of\s+shit|worthless\s+piece)|fuck\s+you|shut\s+the\s+fuck\s+up|motherfucker|cunt)\b")),
    ("hate", 0.9, re.compile(r"\b(?:nigger|faggot|kike|chink|spic|wetback)s?\b|\b(?:all|those)\s+\w+s?\s+(?:should|must|deserve\s+to)\s+(?:die|be\s+exterminated|be\s+killed)")),
    # Chinese
    ("violence_threat", 0.9, re.compile(r"我(?:要|会|就)(?:去)?(?:杀了|杀死|弄死|砍死|打死|捅死)(?:你|他|她|你们|他们)|你(?:去)?死吧|去死吧|自杀吧")),
    ("harmful_instructions", 0.9, re.compile(
        r"(?:如何|怎么|怎样|教你|步骤)(?:自制|制造|制作|合成|做)(?:一个|一些)?(?:炸弹|炸药|爆炸物|毒品|冰毒|神经毒剂|毒气|枪支|沙林|蓖麻毒素)")),
    ("self_harm", 0.9, re.compile(r"(?:无痛|最好的|最快的|最简单的)(?:的)?(?:自杀|结束生命)(?:方法|方式)")),
    ("insult", 0.8, re.compile(r"傻逼|傻b|煞笔|sb玩意|操你妈|草泥马|你妈的|去你妈|狗娘养|废物东西|脑残|滚你")),
    ("hate", 0.9, re.compile(r"(?:支那|黑鬼|蛮夷)(?:人)?(?:都)?(?:该死|去死|不配)")),
]  # fmt: skip


def toxicity(text: str) -> list[Finding]:
    norm = re.sub(r"\s+", " ", normalize(text))
    out = []
    for category, score, pattern in _TOXIC_RULES:
        if pattern.search(norm):
            out.append(Finding("toxicity", category, score, rule=category))
    return out


# ---------------------------------------------------------------------------------------------
# System-prompt leakage
# ---------------------------------------------------------------------------------------------

_CANARY = re.compile(r"canary-[0-9a-f]{12}")
LEAK_SHINGLE_WORDS = 12  # a quoted run this long of the system prompt is a leak, not a coincidence


def _words(text: str) -> list[str]:
    return re.findall(r"\w+|[\u4e00-\u9fff]", normalize(text))


def prompt_leak(text: str, protected: Iterable[str]) -> list[Finding]:
    """The answer repeats a canary token or a long run of words of the system prompt."""
    out: list[Finding] = []
    words = _words(text)
    n = LEAK_SHINGLE_WORDS
    shingles = {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}
    for secret in protected:
        if not secret:
            continue
        if any(c in text for c in _CANARY.findall(secret)):
            out.append(Finding("leak", "system_prompt_leak", 0.99, rule="canary"))
            continue
        sw = _words(secret)
        if shingles and any(tuple(sw[i : i + n]) in shingles for i in range(len(sw) - n + 1)):
            out.append(Finding("leak", "system_prompt_leak", 0.9, rule="verbatim_overlap"))
    return out
