"""Property-based fuzzing of every input a stranger controls: the question, the history and the scope of
``ask --json``, the ``/ask`` API and the chat event. Whatever comes in (surrogates, NUL, right-to-left marks,
huge or deeply nested input), the reply is a JSON object or a Chinese message, never a traceback, and the
next ordinary request is still answered."""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import json  # noqa: E402
import logging  # noqa: E402

import pytest  # noqa: E402
from click.testing import CliRunner  # noqa: E402
from conftest import free_port  # noqa: E402
from gradio_events import call_api, call_event, config, new_session, sample_value  # noqa: E402
from hypothesis import (  # noqa: E402
    HealthCheck,
    example,
    given,
    settings,
    strategies as st,  # noqa: E402
)

from reportqa.cli import main  # noqa: E402
from reportqa.server import launch  # noqa: E402

pytestmark = [pytest.mark.filterwarnings("ignore:::gradio.queueing"),
              pytest.mark.filterwarnings("ignore::UserWarning")]

STATIONS = "全市建成了多少个便民服务站？"
FUZZ = settings(max_examples=25, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])

# Any code point, lone surrogates included; and the characters that break naive handling.
anything = st.characters(exclude_categories=[])
nasty = st.sampled_from(["\x00", "\ud800", "\udfff", "\u200f", "\u202e", "\ufeff", "\u2028", "\r", "\n", "\t",
                         "😀", "𝕏", "<script>", "{", "[", "\\", "'", '"', "大连", "2023年", "多少", "？"])
questions = st.one_of(
    st.text(anything, max_size=80),
    st.lists(nasty, max_size=30).map("".join),
    st.integers(400, 20_000).map(lambda n: "问" * n),
    st.sampled_from([STATIONS, "", " ", "？？？", "那2024年呢？", "1" * 600]),
)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(anything, max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=15,
)
histories = st.one_of(
    json_values,
    st.lists(st.fixed_dictionaries({"question": questions, "answer": st.text(anything, max_size=40)}), max_size=4),
)
DEEP = "[" * 50_000 + "]" * 50_000


def _no_traceback(text: str) -> None:
    assert "Traceback" not in text and 'File "' not in text, text[-800:]


# ---------------------------------------------------------------- ask --json

@pytest.fixture(scope="module")
def cli_env(built_settings):
    return ["--data-dir", str(built_settings.data_dir)]


def _invoke(args: list[str], stdin: bytes | None = None):
    result = CliRunner().invoke(main, args, input=stdin, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"{type(result.exception).__name__}: {result.exception}")
    _no_traceback(result.output)
    return result


@FUZZ
@given(lines=st.lists(questions, min_size=1, max_size=6))
def test_ask_json_answers_every_line_with_a_json_object(cli_env, lines):
    stdin = "\n".join(lines).encode("utf-8", "surrogatepass") + b"\n" + STATIONS.encode() + b"\n"
    result = _invoke([*cli_env, "ask", "--json"], stdin)
    assert result.exit_code == 0
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert all(isinstance(r, dict) and ("answer" in r or "error" in r) for r in rows)
    assert "1726" in rows[-1]["answer"]  # the ordinary question after the fuzz is still answered


@FUZZ
@given(question=questions.filter(lambda q: "\x00" not in q), history=histories.map(json.dumps))
@example(question=STATIONS, history=DEEP)
def test_ask_with_any_history_is_an_answer_or_a_one_line_error(cli_env, question, history):
    result = _invoke([*cli_env, "ask", "--json", "--history", history, question or " "])
    assert result.exit_code in (0, 1, 2)
    if result.exit_code == 0:
        assert isinstance(json.loads(result.stdout), dict)
    else:
        assert result.output.strip().splitlines()[-1].startswith("Error")


# ---------------------------------------------------------------- served: /ask and the chat

@pytest.fixture(scope="module")
def served(qa, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        gradio_tmp = str(tmp_path_factory.mktemp("gradio_tmp"))
        mp.setenv("GRADIO_TEMP_DIR", gradio_tmp)
        mp.setattr("gradio.routes.DEFAULT_TEMP_DIR", gradio_tmp)
        server = launch(qa, port=free_port(), prevent_thread_lock=True)
        try:
            yield server
        finally:
            server.close()


def _unexpected(caplog) -> list[str]:
    """Log records of errors our code did not expect (logged with their traceback)."""
    return [r.getMessage() for r in caplog.records if r.exc_info and r.name.startswith(("ui", "reportqa"))]


@pytest.mark.slow
@FUZZ
@given(question=questions, report=st.one_of(st.text(anything, max_size=30), st.none(), st.integers()),
       issuer=st.one_of(st.text(anything, max_size=30), st.none()),
       year=st.one_of(st.none(), st.integers(-10**12, 10**12), st.floats(allow_nan=False),
                      st.text(anything, max_size=12), st.lists(st.integers(), max_size=2)))
def test_the_ask_api_always_replies_with_an_answer_or_a_chinese_error(served, caplog, question, report, issuer, year):
    caplog.set_level(logging.ERROR)
    event, payload = call_api(served.local_url, "ask", [question, report, issuer, year])
    assert event == "complete", (event, payload)
    (reply,) = payload
    assert isinstance(reply, dict) and ("answer" in reply or "error" in reply)
    if "error" in reply:
        assert any("\u4e00" <= ch <= "\u9fff" for ch in reply["error"])  # said in Chinese
    _no_traceback(json.dumps(reply, ensure_ascii=False))
    assert not _unexpected(caplog)
    event, payload = call_api(served.local_url, "ask", [STATIONS, "", "", None])
    assert event == "complete" and "1726" in payload[0]["answer"]


@pytest.mark.slow
@FUZZ
@given(question=questions, scope=st.one_of(st.text(anything, max_size=20), st.none()))
def test_the_chat_event_always_replies_and_the_tab_keeps_answering(served, caplog, question, scope):
    caplog.set_level(logging.ERROR)
    cfg = config(served.local_url)
    components = {c["id"]: c for c in cfg["components"]}
    send = {c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == "rqa-send"}
    chat = next(d for d in cfg["dependencies"] if any(t[0] in send for t in d["targets"]) and len(d["inputs"]) == 4)
    session = new_session()
    inputs = [sample_value(components[i], "") for i in chat["inputs"]]
    inputs[0], inputs[1], inputs[3] = question, [], scope
    reply = call_event(served.local_url, chat["id"], inputs, session, chat["targets"][0][0])
    _no_traceback(json.dumps(reply, ensure_ascii=False))
    assert reply["status"] == 200 and reply["success"] is not None
    assert not _unexpected(caplog)
    inputs[0], inputs[3] = STATIONS, ""
    again = call_event(served.local_url, chat["id"], inputs, session, chat["targets"][0][0])
    assert again["success"] and "1726" in json.dumps(again["output"], ensure_ascii=False)
