"""Each hole of issue 10, reproduced as it was found (the requests, the files), and shown closed.

The app is served for real (reportqa.server on loopback) and driven over HTTP
the way a stranger with curl would: Gradio's queue protocol (tests/gradio_events.py).
"""
import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

import hashlib  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import warnings  # noqa: E402
import zipfile  # noqa: E402
from pathlib import Path  # noqa: E402

import httpx  # noqa: E402
import pytest  # noqa: E402
from conftest import PROJECT_ROOT, REPORT, free_port, make_data_dir  # noqa: E402
from gradio_events import call_event, config, new_session, sample_value  # noqa: E402

from core.errors import ReportFileError  # noqa: E402
from records.feedback import FeedbackStore  # noqa: E402
from reportqa.config import Settings  # noqa: E402
from reportqa.server import launch  # noqa: E402
from reportqa.service import ReportQA  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore:::gradio.queueing")

USER, PASSWORD = "staff", "正确的密码-for-tests"
STATIONS = "全市建成了多少个便民服务站？"
CANARY_EVAL, CANARY_FEEDBACK = "CANARY-EVAL-7f3a", "CANARY-FEEDBACK-91c2"
CLI = [sys.executable, "-m", "reportqa.cli"]


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _seed_staff_data(data: Path, qa: ReportQA) -> None:
    """An evaluation set and a feedback database, each holding a canary string no stranger may ever see."""
    evals = data / "evals"
    evals.mkdir(parents=True, exist_ok=True)
    lines = (PROJECT_ROOT / "data" / "evals" / "qa.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    canary = {"id": "canary-001", "question": f"{CANARY_EVAL} 问题？", "history": [], "answerable": False,
              "category": "unanswerable", "reference_answer": CANARY_EVAL, "required_facts": [], "evidence": []}
    (evals / "qa.jsonl").write_text("\n".join(lines + [json.dumps(canary, ensure_ascii=False)]) + "\n",
                                    encoding="utf-8")
    FeedbackStore(data / "feedback.db").add(f"{CANARY_FEEDBACK} 问题", qa.ask(STATIONS), "down", CANARY_FEEDBACK)


def _serve(qa, tmp: Path, mp: pytest.MonkeyPatch):
    gradio_tmp = str(tmp / "gradio_tmp")
    mp.setenv("GRADIO_TEMP_DIR", gradio_tmp)
    mp.setattr("gradio.routes.DEFAULT_TEMP_DIR", gradio_tmp)
    return launch(qa, port=free_port(), staff_credentials=(USER, PASSWORD), prevent_thread_lock=True)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The app over the real report, with staff credentials, an evaluation set and feedback in its data folder."""
    root = tmp_path_factory.mktemp("security")
    data = make_data_dir(root)
    qa = ReportQA(Settings(data_dir=data))
    qa.ensure_index()
    _seed_staff_data(data, qa)
    with pytest.MonkeyPatch.context() as mp:
        server = _serve(qa, root, mp)
        try:
            yield server, data, qa
        finally:
            server.close()


def _deps_by_elem(cfg: dict, elem_id: str, role: str = "targets") -> list[dict]:
    """Dependencies whose trigger (or output) is the component with ``elem_id``."""
    ids = {c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == elem_id}
    if role == "targets":
        return [d for d in cfg["dependencies"] if any(t[0] in ids for t in d["targets"])]
    return [d for d in cfg["dependencies"] if ids & set(d["outputs"])]


def _event_inputs(cfg: dict, dep: dict, text: str) -> list:
    components = {c["id"]: c for c in cfg["components"]}
    return [sample_value(components[i], text) for i in dep["inputs"]]


def _feedback_rows(data: Path) -> int:
    return len(FeedbackStore(data / "feedback.db").rows())


# ---------------------------------------------------------------- 1. staff data behind the staff session

@pytest.mark.slow
def test_no_event_reads_or_writes_staff_data_without_logging_in(site):
    server, data, _ = site
    eval_set = data / "evals" / "qa.jsonl"
    before, rows_before = _sha(eval_set), _feedback_rows(data)
    reports_before, version_before = sorted(os.listdir(data / "raw")), (data / "index" / "CURRENT").read_text()
    walked = {}
    for base in (server.local_url, server.local_url + "embed/"):  # the page, and the embeddable chat
        cfg = config(base)
        walked[base] = 0
        for dep in cfg["dependencies"]:
            if not dep["backend_fn"]:
                continue
            trigger = dep["targets"][0][0] if dep["targets"] else None
            for text in ("any-id", "任意问题"):
                reply = call_event(base, dep["id"], _event_inputs(cfg, dep, text), new_session(), trigger)
                seen = json.dumps(reply, ensure_ascii=False)
                assert CANARY_EVAL not in seen and CANARY_FEEDBACK not in seen, (base, dep["id"], seen[:300])
                assert str(data) not in seen, (base, dep["id"], "a server path was sent")
                assert "已加入" not in seen
                walked[base] += 1
    assert walked[server.local_url] > 40 and walked[server.local_url + "embed/"] > 10  # every event, twice
    assert _sha(eval_set) == before and not (data / "eval").exists()
    assert _feedback_rows(data) == rows_before
    # No report went in, out or changed, and nothing waits in staging (报告管理 is staff-only too).
    assert sorted(os.listdir(data / "raw")) == reports_before
    assert (data / "index" / "CURRENT").read_text() == version_before
    assert not (data / "staging").exists() or not any((data / "staging").iterdir())


@pytest.mark.slow
def test_the_add_form_payload_of_the_report_writes_nothing(site):
    """The request as reported: the hidden 加入评测集 form's event with the attacker's data."""
    server, data, _ = site
    eval_set = data / "evals" / "qa.jsonl"
    before = _sha(eval_set)
    cfg = config(server.local_url)
    (add,) = _deps_by_elem(cfg, "rqa-add-button")
    payload = ["any-id", "任意问题", False, "unanswerable", "x", "", "", None, False]
    # The event now takes the session's token first; whatever a client sends there, the server uses its own state.
    for first in (None, True, "forged-token"):
        reply = call_event(server.local_url, add["id"], [first, *payload], new_session(), add["targets"][0][0])
        assert "已加入" not in json.dumps(reply, ensure_ascii=False)
    huge = ["big-id", "问" * 5_000_000, False, "unanswerable", "x", "", "", None, False]
    call_event(server.local_url, add["id"], [None, *huge], new_session(), add["targets"][0][0])
    assert _sha(eval_set) == before


@pytest.mark.slow
def test_config_shows_no_server_paths(site):
    server, data, _ = site
    for path in ("config", "embed/config"):
        text = httpx.get(server.local_url + path, timeout=30).text
        assert str(data) not in text and "feedback.db" not in text and "qa.jsonl" not in text


@pytest.mark.slow
def test_the_rest_api_shows_no_staff_data_or_server_paths(site):
    """The REST routes are public: asking about the canaries, the health check and the docs show none of them."""
    server, data, _ = site
    seen = []
    for question in (f"{CANARY_EVAL}是什么？", f"{CANARY_FEEDBACK} 问题", "评测集里有什么？", STATIONS):
        for route in ("ask", "ask/stream"):
            reply = httpx.post(server.local_url + f"api/v1/{route}", json={"question": question}, timeout=60)
            assert reply.status_code == 200
            body = json.loads(reply.text.split("data: ")[-1]) if route == "ask/stream" else reply.json()
            assert body.pop("question") == question  # the question itself comes back; nothing else may hold them
            seen.append(json.dumps(body, ensure_ascii=False))
    for path in ("api/v1/health", "api/v1/openapi.json", "api/v1/docs", "api/v1/evals", "api/v1/../config"):
        seen.append(httpx.get(server.local_url + path, timeout=30).text)
    text = "\n".join(seen)
    assert CANARY_EVAL not in text and CANARY_FEEDBACK not in text
    assert str(data) not in text and "feedback.db" not in text and "qa.jsonl" not in text


# ---------------------------------------------------------------- 1b. what a real staff session sees, and logout

@pytest.mark.slow
def test_a_logged_in_session_sees_staff_data_until_it_logs_out(site):
    server, data, _ = site
    cfg = config(server.local_url)
    session = new_session()
    (login,) = _deps_by_elem(cfg, "rqa-login-button")
    reply = call_event(server.local_url, login["id"], [USER, PASSWORD], session, login["targets"][0][0])
    assert reply["success"], reply
    reload_dep = next(d for d in _deps_by_elem(cfg, "rqa-set-table", role="outputs")
                      if any(t[1] == "click" for t in d["targets"]) and len(d["outputs"]) == 4)
    inputs = _event_inputs(cfg, reload_dep, "")
    seen = json.dumps(call_event(server.local_url, reload_dep["id"], inputs, session, reload_dep["targets"][0][0]),
                      ensure_ascii=False)
    assert CANARY_EVAL in seen  # the session's own token, kept on the server, let it in
    (logout,) = _deps_by_elem(cfg, "rqa-logout")
    assert call_event(server.local_url, logout["id"], [None], session, logout["targets"][0][0])["success"]
    seen = json.dumps(call_event(server.local_url, reload_dep["id"], inputs, session, reload_dep["targets"][0][0]),
                      ensure_ascii=False)
    assert CANARY_EVAL not in seen


def test_sessions_expire_when_idle_or_old_and_end_at_logout():
    from ui.auth import StaffSessions

    now = [0.0]
    sessions = StaffSessions((USER, PASSWORD), idle_s=60, max_age_s=300, clock=lambda: now[0])
    token = sessions.log_in(USER, PASSWORD, "10.0.0.1").token
    assert token and sessions.valid(token) and not sessions.valid("forged") and not sessions.valid(True)
    now[0] = 59
    assert sessions.valid(token)  # used: the idle clock starts again
    now[0] = 118
    assert sessions.valid(token)
    now[0] = 179
    assert not sessions.valid(token)  # idle for 61 s
    token = sessions.log_in(USER, PASSWORD, "10.0.0.1").token
    for t in range(200, 550, 50):
        now[0] = t
        assert sessions.valid(token) is (t - 179 <= 300)  # used every 50 s, yet gone 300 s after login
    token = sessions.log_in(USER, PASSWORD, "10.0.0.1").token
    sessions.log_out(token)
    assert not sessions.valid(token)


# ---------------------------------------------------------------- 2. links in the reports folder

def test_links_in_the_reports_folder_are_skipped_with_the_reason(tmp_path):
    data = make_data_dir(tmp_path)
    (data / "evals").mkdir()
    (data / "evals" / "qa.jsonl").write_text(json.dumps({"id": CANARY_EVAL}) + "\n", encoding="utf-8")
    (data / "raw" / "passwd.txt").symlink_to("/etc/passwd")
    (data / "raw" / "evalset.md").symlink_to(data / "evals" / "qa.jsonl")
    (data / "raw" / "linked-folder").symlink_to(data / "evals", target_is_directory=True)
    qa = ReportQA(Settings(data_dir=data))
    result = qa.ingest()
    reasons = dict(result.skipped)
    assert "symbolic link" in reasons["passwd.txt"] and "symbolic link" in reasons["evalset.md"]
    assert "not followed" in reasons["linked-folder"]
    qa.load()
    assert [r.source for r in qa.reports()] == [REPORT.name]
    for question in ("root用户的登录shell是什么？/bin/bash", f"{CANARY_EVAL}是什么？"):
        answer = qa.ask(question).to_dict()
        shown = json.dumps([answer["answer"], answer["citations"]], ensure_ascii=False)
        assert "root:x" not in shown and "/bin/" not in shown and CANARY_EVAL not in shown
    assert qa.index_status().built  # the links do not make the index look stale either
    cli = subprocess.run([*CLI, "--data-dir", str(data), "ingest"], capture_output=True, text=True, timeout=300)
    assert cli.returncode == 0 and "passwd.txt: a symbolic link" in cli.stderr and "Traceback" not in cli.stderr


# ---------------------------------------------------------------- 3. decompression bombs and other costly files

def _docx_bomb(path: Path, unpacked_mb: int) -> Path:
    """A real .docx (from python-docx) whose document.xml unpacks to ``unpacked_mb`` MB: a few hundred KB on disk."""
    import docx

    plain = path.with_suffix(".plain.docx")
    document = docx.Document()
    document.add_paragraph("大连市2023年法治政府建设情况报告")
    document.save(plain)
    with zipfile.ZipFile(plain) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as bomb:
        for member in source.infolist():
            if member.filename != "word/document.xml":
                bomb.writestr(member, source.read(member))
                continue
            xml = source.read(member).decode("utf-8")
            head, tail = xml.split("</w:body>")
            info = zipfile.ZipInfo("word/document.xml")
            info.compress_type = zipfile.ZIP_DEFLATED
            with bomb.open(info, "w", force_zip64=True) as out:
                out.write(head.encode())
                block = ("<w:p><w:r><w:t>" + "法" * 20_000 + "</w:t></w:r></w:p>").encode()
                for _ in range(unpacked_mb * 2**20 // len(block)):
                    out.write(block)
                out.write(("</w:body>" + tail).encode())
    plain.unlink()
    return path


def test_a_docx_bomb_is_refused_by_its_declared_size_before_anything_is_unpacked(tmp_path):
    data = make_data_dir(tmp_path)
    _docx_bomb(data / "raw" / "bomb.docx", 210)
    assert (data / "raw" / "bomb.docx").stat().st_size < 5 * 2**20
    result = ReportQA(Settings(data_dir=data)).ingest()
    reason = dict(result.skipped)["bomb.docx"]
    assert "unpacked size" in reason and "over the limit of 209,715,200" in reason
    assert result.parsed == [REPORT.name]


def test_a_bomb_past_the_size_check_is_stopped_by_the_converters_memory_cap(tmp_path):
    """With the declared-size check lifted, the child process hits its memory cap instead of the server."""
    data = make_data_dir(tmp_path)
    _docx_bomb(data / "raw" / "bomb.docx", 600)
    settings = Settings(data_dir=data, max_report_unpacked_mb=10_000, parse_memory_mb=512)
    result = ReportQA(settings).ingest()
    assert "more than 0.5 GiB of memory" in dict(result.skipped)["bomb.docx"]
    assert result.parsed == [REPORT.name]


def test_time_pages_and_characters_are_capped_for_every_parser(tmp_path):
    from test_formats import write_docx, write_pdf, write_portal_html as write_html  # the report in each format

    data = make_data_dir(tmp_path)
    text = REPORT.read_text(encoding="utf-8")
    write_pdf(text, data / "raw" / "report.pdf")
    write_html(text, data / "raw" / "report.html")
    write_docx(text, data / "raw" / "report.docx")
    few_pages = ReportQA(Settings(data_dir=data, max_report_pages=1)).ingest()
    assert "page count" in dict(few_pages.skipped)["report.pdf"]
    with pytest.raises(ReportFileError) as nothing:  # every file over the cap: nothing to index, index untouched
        ReportQA(Settings(data_dir=data, index_dir=tmp_path / "i2", max_report_chars=1000)).ingest()
    assert all(f"{name}: characters of text" in nothing.value.message
               for name in ("report.pdf", "report.html", "report.docx", REPORT.name))
    slow = ReportQA(Settings(data_dir=data, index_dir=tmp_path / "i3", parse_timeout_s=0.001)).ingest()
    assert all("took longer than 0.001 s" in dict(slow.skipped)[name] for name in ("report.pdf", "report.html",
                                                                                  "report.docx"))
    with pytest.raises(ReportFileError, match=f"{REPORT.name}: file size .bytes. [0-9,]+ is over the limit of 1,048"):
        ReportQA(Settings(data_dir=data, index_dir=tmp_path / "i4", max_report_mb=0.001)).ingest()


# ---------------------------------------------------------------- 4. guessing the staff password

@pytest.mark.slow
def test_wrong_passwords_back_off_are_logged_without_the_password_and_the_right_one_waits_too(tmp_path, caplog):
    data = make_data_dir(tmp_path)
    qa = ReportQA(Settings(data_dir=data))
    qa.ensure_index()
    caplog.set_level(logging.WARNING, logger="ui.auth")
    with pytest.MonkeyPatch.context() as mp:
        server = _serve(qa, tmp_path, mp)
        try:
            cfg = config(server.local_url)
            (login,) = _deps_by_elem(cfg, "rqa-login-button")
            statuses = []
            for attempt in range(8):
                reply = call_event(server.local_url, login["id"], [USER, f"guess-{attempt}"], new_session(),
                                   login["targets"][0][0])
                statuses.append(json.dumps(reply["output"], ensure_ascii=False))
            right = call_event(server.local_url, login["id"], [USER, PASSWORD], new_session(), login["targets"][0][0])
        finally:
            server.close()
    assert all("用户名或密码不正确" in s for s in statuses[:5])
    assert all("秒后再试" in s for s in statuses[6:])
    assert "秒后再试" in json.dumps(right["output"], ensure_ascii=False)  # not even checked while waiting
    failed = [r.getMessage() for r in caplog.records if "staff login failed" in r.getMessage()]
    assert len(failed) >= 5 and all("guess-" not in m and "127.0.0.1" in m for m in failed)


def test_the_back_off_doubles_per_address_and_slows_everyone_past_a_global_count():
    from ui.auth import LoginThrottle

    now = [0.0]
    throttle = LoginThrottle(free_tries=3, global_free_tries=10, window_s=600, max_wait_s=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.wait_s("a") == 0
        throttle.failed("a")
    assert throttle.wait_s("a") == 2 and throttle.wait_s("b") == 0
    throttle.failed("a")
    assert throttle.wait_s("a") == 4
    now[0] += 4
    assert throttle.wait_s("a") == 0
    for n in range(20):
        throttle.failed(f"client-{n}")
    assert throttle.wait_s("someone-new") > 0  # many addresses guessing slow everyone
    now[0] += 601
    assert throttle.wait_s("someone-new") == 0 and throttle.wait_s("a") == 0  # the window forgets
    throttle.failed("a")
    throttle.succeeded("a")
    assert throttle.wait_s("a") == 0


# ---------------------------------------------------------------- 5. uploads, headers

@pytest.mark.slow
def test_uploads_are_refused_and_gradios_cache_is_cleaned(site):
    server, _, _ = site
    for cookies in ({}, {"rqa_upload": "forged"}, {"rqa_upload": ""}):
        reply = httpx.post(server.local_url + "gradio_api/upload", files={"files": ("x.txt", b"x" * (20 * 2**20))},
                           cookies=cookies, timeout=60)
        assert reply.status_code == 403 and "上传" in reply.json()["error"]
    assert httpx.get(server.local_url + "gradio_api/upload_progress?upload_id=x", timeout=30).status_code == 403
    assert httpx.post(server.local_url + "staff/upload-session", headers={"x-upload-ticket": "forged"},
                      timeout=30).status_code == 403
    assert server.demo.delete_cache == (3600, 3600)
    assert config(server.local_url)["max_file_size"] == 50 * 2**20  # REPORTQA_MAX_REPORT_MB: only staff upload


def _output_of(cfg: dict, dep: dict, reply: dict, elem_id: str):
    """The value an event sent to the component with ``elem_id``."""
    (target,) = [c["id"] for c in cfg["components"] if c.get("props", {}).get("elem_id") == elem_id]
    return reply["output"][dep["outputs"].index(target)]


@pytest.mark.slow
def test_a_staff_session_may_upload_reports_and_only_while_logged_in(site, tmp_path):
    """The upload route opens for a logged-in staff page (its HttpOnly cookie), files land in staging only,
    traversal names stay inside Gradio's cache, and logging out closes it again."""
    server, data, _ = site
    cfg = config(server.local_url)
    session = new_session()
    (login,) = _deps_by_elem(cfg, "rqa-login-button")
    reply = call_event(server.local_url, login["id"], [USER, PASSWORD], session, login["targets"][0][0])
    ticket = _output_of(cfg, login, reply, "rqa-upload-ticket")
    assert isinstance(ticket, str) and len(ticket) > 30
    exchange = httpx.post(server.local_url + "staff/upload-session", headers={"x-upload-ticket": ticket}, timeout=30)
    assert exchange.status_code == 204
    cookie = exchange.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict") and "Path=/" in cookie
    assert httpx.post(server.local_url + "staff/upload-session", headers={"x-upload-ticket": ticket},
                      timeout=30).status_code == 403  # a ticket is good once
    jar = {"rqa_upload": exchange.cookies["rqa_upload"]}

    report = REPORT.read_bytes()
    uploaded = httpx.post(server.local_url + "gradio_api/upload", cookies=jar, timeout=60,
                          files=[("files", ("../../../../evil.txt", report)), ("files", ("沈阳-2022.txt", report))])
    assert uploaded.status_code == 200, uploaded.text
    paths = uploaded.json()
    gradio_tmp = data.parent / "gradio_tmp"
    assert [Path(p).name for p in paths] == ["evil.txt", "沈阳-2022.txt"]
    assert all(Path(p).resolve().is_relative_to(gradio_tmp.resolve()) for p in paths)
    assert not (data.parent / "evil.txt").exists() and not (data / "evil.txt").exists()
    too_big = httpx.post(server.local_url + "gradio_api/upload", cookies=jar, timeout=120,
                         files={"files": ("big.txt", b"x" * (51 * 2**20))})
    assert too_big.status_code == 413

    # The page's upload event stages them (parsed in staging, not yet in the reports folder).
    (stage,) = [d for d in _deps_by_elem(cfg, "rqa-upload") if d["targets"][0][1] == "upload"]
    files = [{"path": p, "orig_name": Path(p).name, "meta": {"_type": "gradio.FileData"}} for p in paths]
    for who, expect_staged in ((new_session(), False), (session, True)):
        out = call_event(server.local_url, stage["id"], [None, files, None, None], who, stage["targets"][0][0])
        assert ("沈阳-2022.txt" in json.dumps(out["output"], ensure_ascii=False)) is expect_staged
    assert sorted(p.name for p in (data / "staging").glob("*/*")) == ["evil.txt", "沈阳-2022.txt"]
    assert sorted(os.listdir(data / "raw")) == [REPORT.name]

    (logout,) = _deps_by_elem(cfg, "rqa-logout")
    assert call_event(server.local_url, logout["id"], [None], session, logout["targets"][0][0])["success"]
    after = httpx.post(server.local_url + "gradio_api/upload", cookies=jar, timeout=60,
                       files={"files": ("x.txt", b"x")})
    assert after.status_code == 403


@pytest.mark.slow
def test_every_response_says_it_may_not_be_framed_elsewhere_and_loads_only_from_here(site):
    server, _, _ = site
    for path in ("", "config", "gradio_api/info", "api/v1/health", "api/v1/docs", "api/v1/nowhere", "embed/"):
        headers = httpx.get(server.local_url + path, timeout=30).headers
        assert headers["x-frame-options"] == "SAMEORIGIN" and headers["x-content-type-options"] == "nosniff"
        policy = headers["content-security-policy"]
        assert "frame-ancestors 'self'" in policy and "connect-src 'self'" in policy and "default-src 'self'" in policy


# ---------------------------------------------------------------- 6. index parts edited on disk

def test_an_edited_index_part_is_rebuilt_not_trusted(tmp_path):
    data = make_data_dir(tmp_path)
    ReportQA(Settings(data_dir=data)).ingest()
    (part,) = (data / "index" / "parts").iterdir()
    rows = part / "chunks.jsonl"
    rows.write_text(rows.read_text(encoding="utf-8").replace("1726", "6666"), encoding="utf-8")
    (data / "index" / "CURRENT").unlink()
    qa = ReportQA(Settings(data_dir=data))
    result = qa.ensure_index()
    assert result.parsed == [REPORT.name] and result.reused == []
    answer = qa.ask(STATIONS)
    assert "1726" in answer.text and "6666" not in json.dumps(answer.to_dict(), ensure_ascii=False)


# ---------------------------------------------------------------- 7. the smaller ones

@pytest.mark.slow
def test_a_lone_surrogate_from_the_page_is_answered_and_the_tab_keeps_working(site, caplog):
    server, _, _ = site
    cfg = config(server.local_url)
    chat = next(d for d in _deps_by_elem(cfg, "rqa-send") if len(d["inputs"]) == 4)
    session = new_session()
    inputs = _event_inputs(cfg, chat, "")
    inputs[0], inputs[1] = "\ud800便民服务站\ud800有多少？", []
    caplog.set_level(logging.ERROR)
    first = call_event(server.local_url, chat["id"], inputs, session, chat["targets"][0][0])
    assert first["success"], first
    inputs[0] = STATIONS
    second = call_event(server.local_url, chat["id"], inputs, session, chat["targets"][0][0])
    assert second["success"] and "1726" in json.dumps(second["output"], ensure_ascii=False)
    assert not [r for r in caplog.records if r.exc_info]


def _cli(data: Path, *args: str | bytes, stdin: bytes | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, "--data-dir", str(data), *args], input=stdin, capture_output=True, timeout=300)


@pytest.fixture(scope="module")
def cli_data(tmp_path_factory) -> Path:
    data = make_data_dir(tmp_path_factory.mktemp("cli-security"))
    ReportQA(Settings(data_dir=data)).ingest()
    return data


def test_cli_bad_bytes_and_bad_history_are_one_line_errors(cli_data):
    bad_arg = _cli(cli_data, "ask", b"\xff\xfe\xe4\xbd")
    assert bad_arg.returncode == 2 and b"not valid UTF-8" in bad_arg.stderr and b"Traceback" not in bad_arg.stderr
    long_inline = json.dumps([{"question": "问" * 3000, "answer": "答"}], ensure_ascii=False)
    nested = "[" * 50_000 + "]" * 50_000
    for history in (long_inline, nested, "not json", '[{"question": 1}]'):
        out = _cli(cli_data, "ask", "--history", history, "它们一年演练了多少次？")
        assert b"Traceback" not in out.stderr, out.stderr[-500:]
        assert out.returncode in (0, 2)
    assert _cli(cli_data, "ask", "--history", long_inline, "全市建成了多少个便民服务站？").returncode == 0
    assert b"nested too deeply" in _cli(cli_data, "ask", "--history", nested, "问").stderr


def test_cli_a_line_that_is_not_utf8_is_reported_and_the_others_answered(cli_data):
    stdin = "全市建成了多少个便民服务站？\n".encode() + b"\xff\xfe bad\n" + "有多少人获得行政执法资格？\n".encode()
    out = _cli(cli_data, "ask", "--json", stdin=stdin)
    assert out.returncode == 0 and b"Traceback" not in out.stderr
    rows = [json.loads(line) for line in out.stdout.decode("utf-8").splitlines()]
    assert len(rows) == 3 and "1726" in rows[0]["answer"] and "not valid UTF-8" in rows[1]["error"]
    assert "2952" in rows[2]["answer"]


@pytest.mark.slow
def test_ask_api_bad_year_and_unknown_report_get_chinese_errors_and_logs_stay_short(site, caplog):
    from gradio_client import Client

    server, _, _ = site
    caplog.set_level(logging.INFO)
    client = Client(server.local_url, analytics_enabled=False, verbose=False)
    try:
        assert client.predict(STATIONS, "", "", "abc" * 700_000, api_name="/ask") == {
            "error": "年份应为四位数字，例如 2023。"}
        unknown = client.predict(STATIONS, "no-such-report.txt", api_name="/ask")
        assert "no-such-report.txt" in unknown["error"] and REPORT.name in unknown["error"]
        assert "1726" in client.predict(STATIONS, REPORT.name, "", "2023", api_name="/ask")["answer"]
    finally:
        client.close()
    assert all(len(r.getMessage()) < 5_000 for r in caplog.records)


def test_a_vote_that_cannot_be_stored_tells_the_citizen_no_server_path(tmp_path, qa):
    from ui import chat as ui_chat

    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    store = FeedbackStore(blocked / "sub" / "feedback.db")  # its folder cannot be made
    from ui.session import Shown

    answers = {1: Shown(qa.ask(STATIONS))}

    class Like:  # what Gradio passes for a click on 👍 of message 1
        index, liked = 1, True

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = ui_chat.make_vote(store)(answers, Like())
    messages = [str(w.message) for w in caught]
    assert messages == [ui_chat.VOTE_FAILED_ZH] and str(tmp_path) not in "".join(messages)
    assert all(o == {"__type__": "update"} for o in out)


def _read_only(folder: Path, mount_point: Path):
    """``folder`` bind-mounted read-only at ``mount_point`` (a real EROFS, which even root cannot write)."""
    mount_point.mkdir()
    done = subprocess.run(["mount", "--bind", str(folder), str(mount_point)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot bind-mount here: {done.stderr.decode().strip()}")
    subprocess.run(["mount", "-o", "remount,ro,bind", str(mount_point)], check=True)


def test_a_read_only_data_folder_with_a_stale_index_serves_the_last_good_one(tmp_path):
    data = make_data_dir(tmp_path / "rw")
    ReportQA(Settings(data_dir=data)).ingest()
    shutil.copy(REPORT, data / "raw" / "second-copy.txt")  # the index is now stale
    ro = tmp_path / "ro"
    _read_only(data, ro)
    try:
        messages = []
        qa = ReportQA(Settings(data_dir=ro))
        assert qa.ensure_index(progress=messages.append) is None
        assert "1726" in qa.ask(STATIONS).text
        assert any("serving the last good version" in m and "second-copy.txt is new" in m for m in messages)
        assert qa.stale_reasons == ["second-copy.txt is new"]
        out = _cli(ro, "ingest")
        assert out.returncode == 1 and b"Read-only file system" in out.stderr and b"Traceback" not in out.stderr
    finally:
        subprocess.run(["umount", "--lazy", str(ro)], check=True)  # the loaded index still maps files there


def test_an_evaluation_with_a_data_dir_writes_inside_it(cli_data, tmp_path):
    small = tmp_path / "set.jsonl"
    small.write_text("\n".join((PROJECT_ROOT / "data" / "evals" / "qa.jsonl").read_text(encoding="utf-8")
                               .splitlines()[:2]) + "\n", encoding="utf-8")
    out = _cli(cli_data, "eval", "--systems", "ours", "--set", str(small))
    assert out.returncode == 0, out.stderr[-500:]
    assert (cli_data / "eval" / "summary.json").is_file() and not (cli_data.parent / "reports").exists()


def test_identical_reports_under_three_names_quote_the_sentence_once(tmp_path):
    data = make_data_dir(tmp_path)
    for name in ("copy-a.txt", "copy-b.txt"):
        shutil.copy(REPORT, data / "raw" / name)
    qa = ReportQA(Settings(data_dir=data))
    qa.ingest()
    answer = qa.ask("有多少人获得行政执法资格？")
    quotes = [c.quote for c in answer.citations]
    assert quotes and len(quotes) == len(set(quotes)), answer.text


def test_an_evaluation_item_is_capped_in_size(tmp_path):
    """Even a logged-in form cannot grow the set by megabytes: the schema caps every field."""
    from evals.dataset import append_item
    from evals.drafts import ItemRejected, item_from_form

    with pytest.raises(ItemRejected, match="太长，最多 1000 字"):
        item_from_form("big-1", "问" * 5_000_000, False, "unanswerable", "x", "", "")
    with pytest.raises(ValueError, match="at most 1000 characters"):
        append_item(tmp_path / "qa.jsonl", {"id": "big-2", "question": "问" * 5_000_000, "history": [],
                                            "answerable": False, "category": "unanswerable",
                                            "reference_answer": "x", "required_facts": [], "evidence": []})
    assert not (tmp_path / "qa.jsonl").exists()
