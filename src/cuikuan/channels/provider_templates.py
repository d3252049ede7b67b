"""Template-based SMS providers (Alibaba Cloud, Tencent Cloud) send a registered template code
and its parameters, never free text. cuikuan keeps rendering the whole message itself (lint,
measure, explain, timeline all see the real text) and, at send time, reads the parameters back
out of the rendered text with the template as registered at the provider:

    t = ProviderTemplate("SMS_154950909", "您的账单${amount}元将于${date}到期，请按时还款。")
    t.params("【示例银行】您的账单1,234.50元将于12月1日到期，请按时还款。")
    # {"amount": "1,234.50", "date": "12月1日"}

A text that does not fit its registered template is refused before it leaves (the provider would
refuse it too, or worse, send something else). The leading 【signature】 is the provider's
SignName, not part of the template.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}|\{([0-9]+)\}")
_SIGNATURE = re.compile(r"^\s*【[^】]{1,30}】\s*|\s*【[^】]{1,30}】\s*$")


class TemplateMismatch(ValueError):
    pass


@dataclass(frozen=True)
class ProviderTemplate:
    code: str
    text: str  # as registered: Aliyun ${name} or Tencent {1}
    _pattern: re.Pattern[str] = field(init=False, repr=False, compare=False)
    names: tuple[str, ...] = field(init=False, compare=False)

    def __post_init__(self) -> None:
        parts, names, last = [], [], 0
        for m in _VAR.finditer(self.text):
            parts.append(re.escape(self.text[last : m.start()]))
            name = m.group(1) or m.group(2)
            names.append(name)
            parts.append(f"(?P<v{len(names) - 1}>.+?)")
            last = m.end()
        parts.append(re.escape(self.text[last:]))
        object.__setattr__(self, "_pattern", re.compile("".join(parts), re.S))
        object.__setattr__(self, "names", tuple(names))

    def params(self, rendered: str) -> dict[str, str]:
        body = _SIGNATURE.sub("", rendered).strip()
        m = self._pattern.fullmatch(body)
        if m is None:
            raise TemplateMismatch(
                f"the text does not fit provider template {self.code}: {body[:60]!r}"
            )
        return {name: m.group(f"v{i}") for i, name in enumerate(self.names)}
