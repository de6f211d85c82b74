from __future__ import annotations

import threading

from qa.search_terms import tokenize_for_search


def test_word_inside_a_long_chinese_run_is_a_token() -> None:
    tokens = tokenize_for_search("我国的数字化转型工作由信息中心负责推进")
    assert "转型" in tokens
    assert "信息中心" in tokens
    assert "信息" in tokens  # search mode also emits the short words inside long ones


def test_chinese_stopwords_and_question_words_are_dropped() -> None:
    tokens = tokenize_for_search("哪些部门负责数字化转型的工作？")
    assert "哪些" not in tokens
    assert "的" not in tokens
    assert {"部门", "负责", "转型", "工作"} <= set(tokens)


def test_numbers_stay_whole_and_percentages_give_both_forms() -> None:
    tokens = tokenize_for_search("营业收入448.53亿元，同比增长3.46%，共1,234.5万人")
    assert "448.53" in tokens
    assert "3.46%" in tokens and "3.46" in tokens
    assert "1234.5" in tokens
    assert "亿元" in tokens


def test_english_is_lowercased_without_stopwords_or_punctuation() -> None:
    assert tokenize_for_search("The Library opens at nine, doesn't it?") == [
        "library",
        "opens",
        "nine",
        "doesn't",
    ]


def test_full_width_forms_tokenise_like_ascii() -> None:
    assert tokenize_for_search("３．４６％ ＧＤＰ") == tokenize_for_search("3.46% GDP")


def test_alphanumeric_words_stay_together() -> None:
    tokens = tokenize_for_search("5G基站和H100服务器")
    assert "5g" in tokens and "h100" in tokens
    assert "基站" in tokens


def test_punctuation_and_whitespace_give_nothing() -> None:
    assert tokenize_for_search("") == []
    assert tokenize_for_search(" 。，！？…… \n\t") == []


def test_concurrent_first_use_is_safe() -> None:
    results: list[list[str]] = []
    text = "员工每年享有带薪年休假"

    def work() -> None:
        results.append(tokenize_for_search(text))

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4
    assert all(r == results[0] for r in results)
