"""Follow-up questions: rebuild a turn that leans on the previous one into a question of its own.

Staff talk to the chat like to a person: "2024年厦门全社会研发投入强度是多少？" then
"那2020年呢？", or "天马微电子的总裁是谁？" then "它在厦累计参与的项目投资总额超过多少？". The
extractive reader only understands complete questions, so before retrieval a
:class:`FollowUpResolver` decides whether a turn depends on the previous one and, if so, writes
the self-contained question it stands for, without a language model (rules over jieba's
part-of-speech tags and the corpus's own text):

- ellipsis (那2020年呢？ / 还有乾照光电呢？ / "And in 2020?"): the new slot (a year, a number, a
  place, a name, an attribute) replaces the slot of the same kind in the previous question;
- pronouns and demonstratives (它/他/她/其/该公司/这家企业…, "its", "he"): replaced by the previous
  question's subject, or by the previous answer where that question asked who or which one;
- a question with no subject of its own (同比增长多少？ / 项目总投资多少？): the previous question's
  topic is carried into it.

A question that stands alone is never rewritten. Conversation state travels with each request
(``history``, oldest first), so any server replica can answer any turn; earlier turns are resolved
in order, so a chain of follow-ups (那2020年呢？ → 那2019年呢？) keeps its subject.
"""

from __future__ import annotations

from .history import (
    MAX_ANSWER_CHARS,
    MAX_HISTORY_TURNS,
    MAX_TURN_CHARS,
    Turn,
    ask_options,
    conversation_turns,
    fill_answers,
    load_history_file,
    parse_history,
    turns_from_chat,
)
from .resolver import FollowUpResolver, Resolution, resolver_for

__all__ = [
    "MAX_ANSWER_CHARS",
    "MAX_HISTORY_TURNS",
    "MAX_TURN_CHARS",
    "FollowUpResolver",
    "Resolution",
    "Turn",
    "ask_options",
    "conversation_turns",
    "fill_answers",
    "load_history_file",
    "parse_history",
    "resolver_for",
    "turns_from_chat",
]
